package kernels_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	want := kerneltest.Debian(t, kernels.X86_64)
	srv := kerneltest.NewMainline(t)
	srv.Publish(t, "v6.12", want)
	c := testCache(t)
	specs := map[string]kernels.Spec{
		"mainline": {Mainline: &kernels.MainlineSpec{Version: "v6.12", URL: srv.Root()}},
		"debian":   {Debian: &kernels.DebianSpec{Suite: kerneltest.Suite}},
	}
	m, err := kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	deb := *want
	deb.Name = "debian"
	lock := kernels.NewLock("hash", specs, []*kernels.Kernel{m, &deb})
	path := filepath.Join(t.TempDir(), "matrix.lock")
	if err := lock.Write(path); err != nil {
		t.Fatal(err)
	}
	lock, err = kernels.ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}

	// The Debian pin resolves to exactly the pinned .deb (from the blob
	// cache of the user, which holds it).
	pin := lock.Pin("debian", kernels.X86_64, specs["debian"])
	if pin == nil || len(pin.Files) != 1 || pin.Files[0].SHA256 != want.SHA256 {
		t.Fatalf("debian pin = %+v, want the .deb %s", pin, want.SHA256)
	}
	k, err := kernels.Resolve(ctx, "debian", specs["debian"], kernels.X86_64, kernels.Options{Pin: pin, Logger: quiet()})
	if err != nil || k.SHA256 != want.SHA256 || k.Origin.Package != want.Origin.Package {
		t.Fatalf("pinned debian = %+v, %v", k, err)
	}

	// A changed source has no pin.
	if p := lock.Pin("debian", kernels.X86_64, kernels.Spec{Debian: &kernels.DebianSpec{Suite: "bookworm"}}); p != nil {
		t.Errorf("pin for a changed source: %+v", p)
	}

	// The mainline pin downloads by URL and verifies the SHA-256 even when
	// the server now publishes something else under the same name.
	pin = lock.Pin("mainline", kernels.X86_64, specs["mainline"])
	if pin == nil || len(pin.Files) != 2 {
		t.Fatalf("mainline pin = %+v", pin)
	}
	other := kerneltest.Debian(t, kernels.ARM64) // different bytes, same file names
	srv.Publish(t, "v6.12", &kernels.Kernel{Arch: kernels.X86_64, Release: want.Release, Image: other.Image, Config: other.Config, Modules: other.Modules})
	_, err = kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: testCache(t), Pin: pin, Logger: quiet()})
	if !errors.Is(err, kernels.ErrChecksum) {
		t.Fatalf("pinned mainline after the server changed: %v, want a checksum mismatch", err)
	}
	k, err = kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: c, Pin: pin, Logger: quiet()})
	if err != nil || k.SHA256 != m.SHA256 {
		t.Fatalf("pinned mainline from the cache = %v, %v; want %s", k, err, m.SHA256)
	}
}

// TestMatrixHash: the hash of a matrix's kernels is what vmrunner lock has
// always written, so that existing lock files stay fresh.
func TestMatrixHash(t *testing.T) {
	ks := []kernels.MatrixKernel{
		{Name: "a", Arch: []kernels.Arch{kernels.X86_64}, Source: kernels.Spec{Debian: &kernels.DebianSpec{Suite: "bookworm"}}},
		{Name: "b", Arch: kernels.Arches, Source: kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v6.5"}}},
	}
	if got, want := kernels.MatrixHash(ks), "cd531ac9363dc2929b0bbc2a5cd1451c8923fd69d84714884e64d0e4f4a07107"; got != want {
		t.Errorf("MatrixHash = %s, want %s (written by earlier vmrunner lock)", got, want)
	}
}

func TestLoadLock(t *testing.T) {
	dir := t.TempDir()
	matrix := filepath.Join(dir, "matrix.yaml")
	matrixKernels := func(suite string) []kernels.MatrixKernel {
		return []kernels.MatrixKernel{{Name: "a", Arch: []kernels.Arch{kernels.X86_64}, Source: kernels.Spec{Debian: &kernels.DebianSpec{Suite: suite}}}}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ks := matrixKernels("bookworm")
	if l, err := kernels.LoadLock(matrix, ks, log); l != nil || err != nil {
		t.Fatalf("no lock file: %v, %v", l, err)
	}

	k := &kernels.Kernel{Name: "a", Arch: kernels.X86_64, SHA256: strings.Repeat("c", 64),
		Origin: kernels.Origin{Type: "debian", URL: "http://deb/k.deb", Package: "linux-image-x"}}
	if err := kernels.NewLock(kernels.MatrixHash(ks), map[string]kernels.Spec{"a": ks[0].Source}, []*kernels.Kernel{k}).Write(filepath.Join(dir, "matrix.lock")); err != nil {
		t.Fatal(err)
	}
	l, err := kernels.LoadLock(matrix, ks, log)
	if err != nil || strings.Contains(logs.String(), "stale") {
		t.Fatalf("fresh lock: %v, logs %s", err, logs.String())
	}
	pin := l.Pin("a", kernels.X86_64, ks[0].Source)
	if pin == nil || pin.Files[0].URL != "http://deb/k.deb" || pin.Files[0].SHA256 != k.SHA256 {
		t.Fatalf("pin = %+v", pin)
	}

	ks = matrixKernels("trixie")
	l, err = kernels.LoadLock(matrix, ks, log)
	if err != nil || !strings.Contains(logs.String(), "lock file is stale") {
		t.Fatalf("stale lock: %v, logs %s", err, logs.String())
	}
	if p := l.Pin("a", kernels.X86_64, ks[0].Source); p != nil {
		t.Errorf("pin of a changed source: %+v", p)
	}

	os.WriteFile(filepath.Join(dir, "matrix.lock"), []byte("{"), 0o644)
	if _, err := kernels.LoadLock(matrix, ks, log); !errors.Is(err, kernels.ErrBadInput) || !strings.Contains(err.Error(), "run vmrunner lock again") {
		t.Errorf("broken lock: %v", err)
	}
}
