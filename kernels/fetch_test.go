package kernels

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// smallDisk mounts a tmpfs of size bytes (root only; skipped otherwise) and
// returns its directory.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount a %s tmpfs (needs root): %v", size, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestDownloadDiskFull: a download that fills the cache's disk says so,
// names the cache and how to make room, and is not taken for a mirror
// problem; nothing half-written stays.
func TestDownloadDiskFull(t *testing.T) {
	body := make([]byte, 2<<20)
	rand.Read(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	cache, err := OpenCache(smallDisk(t, "512k"))
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Deb: &DebSpec{URL: srv.URL + "/k.deb", SHA256: sha256Hex(body)}}
	_, err = Resolve(context.Background(), "k", spec, X86_64, Options{Cache: cache, Logger: quietLogger()})
	if err == nil || errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ENOSPC) ||
		!strings.Contains(err.Error(), "write to the cache: ") || !strings.Contains(err.Error(), "no space left on device") ||
		!strings.Contains(err.Error(), cache.Dir+" needs room") {
		t.Fatalf("download into a full disk: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(cache.Dir, "blobs", "sha256"))
	if len(entries) != 0 {
		t.Errorf("left in blobs/sha256: %v", entries)
	}
}
