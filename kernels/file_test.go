package kernels_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestResolveFile(t *testing.T) {
	ctx := context.Background()
	for _, arch := range kernels.Arches {
		t.Run(string(arch), func(t *testing.T) {
			want := kerneltest.Debian(t, arch)
			spec := kernels.FileSpec{Kernel: want.Image, Modules: want.Modules, Config: want.Config}
			c := testCache(t)
			k, err := kernels.Resolve(ctx, "f", kernels.Spec{File: &spec}, arch, kernels.Options{Cache: c, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			checkKernel(t, k, want)
			if k.Modules != want.Modules || k.Origin.Type != "file" || len(k.Origin.Files) != 3 {
				t.Errorf("modules %s origin %+v", k.Modules, k.Origin)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		want := kerneltest.Debian(t, kernels.X86_64)
		dir := t.TempDir()
		for _, tc := range []struct {
			name string
			spec kernels.FileSpec
			arch kernels.Arch
			want error
			msg  string
		}{
			{"missing kernel", kernels.FileSpec{Kernel: filepath.Join(dir, "bzImage")}, kernels.X86_64, kernels.ErrNotFound, "no such file"},
			{"not a kernel", kernels.FileSpec{Kernel: want.Config}, kernels.X86_64, kernels.ErrNotAKernel, "found text"},
			{"wrong arch", kernels.FileSpec{Kernel: want.Image}, kernels.ARM64, kernels.ErrWrongArch, "want arm64"},
			{"modules not installed", kernels.FileSpec{Kernel: want.Image, Modules: dir}, kernels.X86_64, kernels.ErrNotFound, "modules_install"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := testCache(t)
				_, err := kernels.Resolve(ctx, "f", kernels.Spec{File: &tc.spec}, tc.arch, kernels.Options{Cache: c, Logger: quiet()})
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line wrapping %v containing %q", err, tc.want, tc.msg)
				}
				if got := entries(t, c); len(got) != 0 {
					t.Errorf("cache holds %v after a failure", got)
				}
			})
		}
	})
}

// TestResolveFileSpecial: a file: or deb: source naming a device, a FIFO,
// a directory or a huge file is bad input at once, read nowhere; a long
// read stops when the context ends.
func TestResolveFileSpecial(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "vmlinux")
	f, _ := os.Create(huge)
	f.Truncate(2<<30 + 1) // sparse
	f.Close()
	small := writeTemp(t, dir, "bzImage", []byte("not a kernel"))
	for _, tc := range []struct {
		name string
		spec kernels.Spec
		msg  string
	}{
		{"kernel /dev/zero", kernels.Spec{File: &kernels.FileSpec{Kernel: "/dev/zero"}}, "file.kernel: /dev/zero is a character device, not a regular file"},
		{"kernel FIFO", kernels.Spec{File: &kernels.FileSpec{Kernel: fifo}}, "file.kernel: " + fifo + " is a FIFO, not a regular file"},
		{"kernel directory", kernels.Spec{File: &kernels.FileSpec{Kernel: dir}}, "is a directory, not a regular file"},
		{"kernel too large", kernels.Spec{File: &kernels.FileSpec{Kernel: huge}}, "is 2.0 GiB, too large: the limit is 2.0 GiB"},
		{"config /dev/zero", kernels.Spec{File: &kernels.FileSpec{Kernel: small, Config: "/dev/zero"}}, "file.config: /dev/zero is a character device"},
		{"deb FIFO", kernels.Spec{Deb: &kernels.DebSpec{File: fifo}}, "deb: " + fifo + " is a FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCache(t)
			_, err := kernels.Resolve(context.Background(), "f", tc.spec, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
			if !errors.Is(err, kernels.ErrBadInput) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want bad input containing %q", err, tc.msg)
			}
			if got := entries(t, c); len(got) != 0 {
				t.Errorf("cache holds %v after a failure", got)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		// A real kernel grown (sparsely) to 1 GiB: its hash takes a while.
		want := kerneltest.Debian(t, kernels.X86_64)
		big := filepath.Join(dir, "big")
		data, err := os.ReadFile(want.Image)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(big, data, 0o644)
		os.Truncate(big, 1<<30)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = kernels.Resolve(ctx, "f", kernels.Spec{File: &kernels.FileSpec{Kernel: big}}, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
		if !errors.Is(err, context.Canceled) || errors.Is(err, kernels.ErrBadInput) {
			t.Fatalf("err = %v, want context.Canceled (not bad input)", err)
		}
	})

	t.Run("not a kernel, huge", func(t *testing.T) {
		// Refused from its first bytes, never hashed or copied.
		_, err := kernels.Resolve(context.Background(), "f", kernels.Spec{File: &kernels.FileSpec{Kernel: huge[:len(huge)-len("vmlinux")] + "zeros"}}, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
		if !errors.Is(err, kernels.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		zeros := filepath.Join(dir, "zeros")
		f, _ := os.Create(zeros)
		f.Truncate(2 << 30)
		f.Close()
		_, err = kernels.Resolve(context.Background(), "f", kernels.Spec{File: &kernels.FileSpec{Kernel: zeros}}, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
		if !errors.Is(err, kernels.ErrNotAKernel) {
			t.Fatalf("2 GiB of zeros: %v, want not a kernel", err)
		}
	})
}
