package kerneltest

import (
	"context"
	"errors"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/kernels"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PinnedMatrix is a matrix whose one kernel, an Ubuntu-mainline-like v6.12
// served on loopback, was locked to kernel A and has been republished since
// as kernel B (the same real kernel with another config, so other bytes).
// It returns the matrix and the cache directories of A and B.
func PinnedMatrix(t *testing.T) (m *matrix.Matrix, cacheDir, dirA, dirB string) {
	t.Helper()
	ctx := context.Background()
	amd := Debian(t, kernels.X86_64)
	srv := NewMainline(t)
	srv.Publish(t, "v6.12", amd)

	dir := t.TempDir()
	path := filepath.Join(dir, "matrix.yaml")
	yaml := "checks: [btf]\nkernels:\n  - {name: k, arch: x86_64, source: {ubuntu-mainline: {version: v6.12, url: \"" + srv.Root() + "\"}}}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir = filepath.Join(dir, "cache")
	c, err := kernels.OpenCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	kopts := kernels.Options{Cache: c, Logger: slog.New(slog.DiscardHandler)}
	a, err := kernels.Resolve(ctx, "k", m.Kernels[0].Source, kernels.X86_64, kopts)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := kernels.Lock(ctx, m.LockKernels(), kopts)
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Write(kernels.LockPath(path)); err != nil {
		t.Fatal(err)
	}

	config := filepath.Join(dir, "config-b")
	data, err := os.ReadFile(amd.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, append(data, "# kernel B\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Publish(t, "v6.12", &kernels.Kernel{Arch: kernels.X86_64, Release: amd.Release, Image: amd.Image, Config: config, Modules: amd.Modules})
	kopts.Refresh = true
	b, err := kernels.Resolve(ctx, "k", m.Kernels[0].Source, kernels.X86_64, kopts)
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB = filepath.Dir(filepath.Dir(a.Image)), filepath.Dir(filepath.Dir(b.Image))
	if dirA == dirB {
		t.Fatalf("kernels A and B share %s", dirA)
	}
	return m, cacheDir, dirA, dirB
}

// FakeQEMU puts a qemu-system-x86_64 first in PATH that records its
// command line and exits 1, and returns the file it writes: which kernel
// a command boots is what is tested, not the boot.
func FakeQEMU(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(bin, "qemu.args")
	script := "#!/bin/sh\necho \"$@\" >> " + log + "\necho 'fake qemu: not booting' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, qemu.Binary(kernels.X86_64)), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

// BootedKernels lists the -kernel arguments QEMU was started with.
func BootedKernels(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-kernel" {
				ks = append(ks, f[i+1])
			}
		}
	}
	return ks
}

// AllUnder reports whether ks is not empty and every path in it is under
// dir.
func AllUnder(ks []string, dir string) bool {
	for _, k := range ks {
		if !strings.HasPrefix(k, dir+string(filepath.Separator)) {
			return false
		}
	}
	return len(ks) > 0
}
