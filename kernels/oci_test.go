package kernels_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vmrunner/vmrunner/internal/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testCache is an empty cache for one test.
func testCache(t *testing.T) *kernels.Cache {
	c, err := kernels.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// entries lists kernels/ and blobs/ of a cache, temporaries included.
func entries(t *testing.T, c *kernels.Cache) []string {
	var names []string
	for _, sub := range []string{"kernels", "blobs/sha256"} {
		es, _ := os.ReadDir(filepath.Join(c.Dir, sub))
		for _, e := range es {
			names = append(names, sub+"/"+e.Name())
		}
	}
	return names
}

// checkKernel asserts that k is the real kernel want, re-housed.
func checkKernel(t *testing.T, k, want *kernels.Kernel) {
	t.Helper()
	if k.Release != want.Release || k.Arch != want.Arch {
		t.Errorf("got %s %s, want %s %s", k.Release, k.Arch, want.Release, want.Arch)
	}
	for _, p := range []string{k.Image, k.Uncompressed, k.Config, filepath.Join(k.Modules, "modules.builtin")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing file: %v", err)
		}
	}
	info, err := kernels.Inspect(k.Uncompressed)
	if err != nil || info.Arch != want.Arch {
		t.Errorf("Inspect(%s) = %+v, %v", k.Uncompressed, info, err)
	}
	if want.Arch == kernels.X86_64 && !info.PVH {
		t.Errorf("x86_64 vmlinux has no PVH entry point")
	}
}

func TestResolveOCI(t *testing.T) {
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	arm64 := kerneltest.Debian(t, kernels.ARM64)
	host := kerneltest.Registry(t)
	ciAMD := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.CIKernels))
	ciARM := kerneltest.Image(t, kernels.ARM64, kerneltest.Files(t, arm64, kerneltest.CIKernels))
	lvh := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.LVH))
	noKernel := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.ConfigOnly))
	kerneltest.Push(t, host+"/ci-kernels:single", ciAMD)
	kerneltest.Push(t, host+"/lvh-images/kernel-images:6.12", lvh)
	kerneltest.Push(t, host+"/empty:1", noKernel)
	indexDigest := kerneltest.PushIndex(t, host+"/ci-kernels:6.12", map[kernels.Arch]v1.Image{kernels.X86_64: ciAMD, kernels.ARM64: ciARM})
	kerneltest.PushIndex(t, host+"/amd64only:1", map[kernels.Arch]v1.Image{kernels.X86_64: ciAMD})
	ctx := context.Background()

	t.Run("layouts", func(t *testing.T) {
		for _, tc := range []struct {
			ref  string
			arch kernels.Arch
			want *kernels.Kernel
		}{
			{host + "/ci-kernels:single", kernels.X86_64, amd64},
			{host + "/lvh-images/kernel-images:6.12", kernels.X86_64, amd64},
			{host + "/ci-kernels:6.12", kernels.X86_64, amd64},
			{host + "/ci-kernels:6.12", kernels.ARM64, arm64},
			{host + "/ci-kernels@" + indexDigest, kernels.ARM64, arm64},
		} {
			t.Run(tc.ref+"/"+string(tc.arch), func(t *testing.T) {
				c := testCache(t)
				k, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: tc.ref}, tc.arch, kernels.Options{Cache: c, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				checkKernel(t, k, tc.want)
				if k.Origin.Type != "oci" || !strings.HasPrefix(k.Origin.Digest, "sha256:") || !strings.HasSuffix(k.SHA256, strings.TrimPrefix(k.Origin.Digest, "sha256:")) {
					t.Errorf("origin = %+v, sha256 %s: want the manifest digest", k.Origin, k.SHA256)
				}
			})
		}
	})

	t.Run("vmlinux only", func(t *testing.T) {
		kerneltest.Push(t, host+"/vmlinux:1", kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.VmlinuxOnly)))
		k, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: host + "/vmlinux:1"}, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		info, err := kernels.Inspect(k.Image)
		if err != nil || info.Format != kernels.FormatELF || !info.PVH || k.Release != amd64.Release {
			t.Errorf("kernel %+v: %+v, %v", k, info, err)
		}
	})

	t.Run("pinned digest resolves offline once cached", func(t *testing.T) {
		c := testCache(t)
		ref := host + "/ci-kernels@" + indexDigest
		k, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: ref}, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		// Another host:port is not a registry: a warm pinned resolve must not ask.
		k2, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: ref}, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
		if err != nil || k2.SHA256 != k.SHA256 {
			t.Fatalf("warm resolve = %v, %v; want %s", k2, err, k.SHA256)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			ref  string
			arch kernels.Arch
			want error
			msg  string
		}{
			{host + "/ci-kernels:nope", kernels.X86_64, kernels.ErrNotFound, "no such repository or tag"},
			{host + "/nothere:1", kernels.X86_64, kernels.ErrNotFound, "no such repository or tag"},
			{host + "/empty:1", kernels.X86_64, kernels.ErrNotAKernel, "has no /boot/vmlinuz"},
			{host + "/amd64only:1", kernels.ARM64, kernels.ErrNotFound, "has no linux/arm64 variant (it has: linux/amd64)"},
			{host + "/ci-kernels:single", kernels.ARM64, kernels.ErrWrongArch, "found a x86_64 bzImage kernel, want arm64"},
			{"127.0.0.1:1/ci-kernels:6.1", kernels.X86_64, kernels.ErrUnreachable, "check the network"},
		} {
			t.Run(tc.ref+"/"+string(tc.arch), func(t *testing.T) {
				c := testCache(t)
				_, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: tc.ref}, tc.arch, kernels.Options{Cache: c, Logger: quiet()})
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				if got := entries(t, c); len(got) != 0 {
					t.Errorf("cache holds %v after a failure", got)
				}
			})
		}
	})
}
