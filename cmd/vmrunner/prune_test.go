package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKernelsPruneLeftovers: what runs killed with SIGKILL leave (an
// initramfs temporary, a half-extracted kernel, a QEMU socket directory)
// goes with every prune; initramfs archives go with --all.
func TestKernelsPruneLeftovers(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	tmp := filepath.Join(dir, "tmp")
	t.Setenv("TMPDIR", tmp)
	write := func(p, data string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	archive := filepath.Join(cache, "initramfs", "0f79d0a7.cpio")
	write(archive, "archive")
	write(archive+".sha256", "sum\n")
	write(archive+".lock", "")
	write(archive+".3141.tmp", "half an archive")
	write(filepath.Join(cache, "kernels", ".tmp-abc-99", "boot", "vmlinuz"), "half a kernel")
	sock := filepath.Join(tmp, "vmr4242", "qmp")
	os.MkdirAll(filepath.Dir(sock), 0o700)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // QEMU died with its vmrunner: the socket file stays, bound by nobody
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Dir(sock), old, old)
	matrix := filepath.Join(dir, "matrix.yaml")
	write(matrix, "kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n")

	code, out := runCLI(t, "kernels", "prune", "--cache-dir", cache, matrix)
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"removed kernels/.tmp-abc-99 (0.0 MiB)", "removed initramfs/0f79d0a7.cpio.3141.tmp (0.0 MiB)",
		"removed " + filepath.Dir(sock) + " (0.0 MiB)", "3 entries removed, freed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("prune output lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{archive + ".3141.tmp", filepath.Dir(sock), filepath.Join(cache, "kernels", ".tmp-abc-99")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still there", gone)
		}
	}
	if _, err := os.Stat(archive); err != nil {
		t.Errorf("prune without --all removed the archive: %v", err)
	}

	code, out = runCLI(t, "kernels", "prune", "--all", "--cache-dir", cache)
	if code != 0 || !strings.Contains(out, "removed initramfs/0f79d0a7.cpio (0.0 MiB)") || !strings.Contains(out, "3 entries removed") {
		t.Fatalf("prune --all: exit %d\n%s", code, out)
	}
	if left, _ := os.ReadDir(filepath.Join(cache, "initramfs")); len(left) != 0 {
		t.Errorf("prune --all left %v in initramfs/", left)
	}
}
