package kernels_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
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
	for _, p := range []string{k.Image, k.Uncompressed, filepath.Join(k.Modules, "modules.builtin")} {
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
	host, fetches := kerneltest.CountingRegistry(t)
	ciAMD := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.CIKernels))
	ciARM := kerneltest.Image(t, kernels.ARM64, kerneltest.Files(t, arm64, kerneltest.CIKernels))
	lvhAMD := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.LVH))
	lvhARM := kerneltest.Image(t, kernels.ARM64, kerneltest.Files(t, arm64, kerneltest.LVH))
	noKernel := kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.ConfigOnly))
	// ci-kernels pushes its X.Y tags for amd64 alone, without provenance:
	// a single image manifest. Its mainline/stable/longterm tags are
	// indexes of amd64 and arm64.
	kerneltest.Push(t, host+"/cilium/ci-kernels:6.1", ciAMD)
	indexDigest := kerneltest.PushIndex(t, host+"/cilium/ci-kernels:stable", map[kernels.Arch]v1.Image{kernels.X86_64: ciAMD, kernels.ARM64: ciARM})
	// little-vm-helper pushes with buildx's default provenance: an index
	// with attestation entries, also for its amd64-only rhel kernels.
	kerneltest.PushAttestedIndex(t, host+"/lvh-images/kernel-images:6.12-main", map[kernels.Arch]v1.Image{kernels.X86_64: lvhAMD, kernels.ARM64: lvhARM})
	kerneltest.PushAttestedIndex(t, host+"/lvh-images/kernel-images:rhel8.10-20260817.013106", map[kernels.Arch]v1.Image{kernels.X86_64: lvhAMD})
	kerneltest.Push(t, host+"/empty:1", noKernel)
	ctx := context.Background()

	t.Run("layouts", func(t *testing.T) {
		for _, tc := range []struct {
			ref    string
			arch   kernels.Arch
			want   *kernels.Kernel
			config bool // the image ships the config
			btf    bool // and the BTF as a file
			img    v1.Image
		}{
			{host + "/cilium/ci-kernels:6.1", kernels.X86_64, amd64, false, false, ciAMD},
			{host + "/cilium/ci-kernels:stable", kernels.X86_64, amd64, false, false, ciAMD},
			{host + "/cilium/ci-kernels:stable", kernels.ARM64, arm64, false, false, ciARM},
			{host + "/cilium/ci-kernels@" + indexDigest, kernels.ARM64, arm64, false, false, ciARM},
			{host + "/lvh-images/kernel-images:6.12-main", kernels.X86_64, amd64, true, true, lvhAMD},
			{host + "/lvh-images/kernel-images:6.12-main", kernels.ARM64, arm64, true, true, lvhARM},
			{host + "/lvh-images/kernel-images:rhel8.10-20260817.013106", kernels.X86_64, amd64, true, true, lvhAMD},
		} {
			t.Run(tc.ref+"/"+string(tc.arch), func(t *testing.T) {
				c := testCache(t)
				fetches.Reset()
				k, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: tc.ref}, tc.arch, kernels.Options{Cache: c, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				// The counting that proves a wrong arch downloads nothing works.
				for _, l := range kerneltest.LayerDigests(t, tc.img) {
					if !slices.Contains(fetches.Blobs(), l) {
						t.Errorf("layer %s not seen among the blobs fetched: %v", l, fetches.Blobs())
					}
				}
				checkKernel(t, k, tc.want)
				if k.Origin.Type != "oci" || !strings.HasPrefix(k.Origin.Digest, "sha256:") || !strings.HasSuffix(k.SHA256, strings.TrimPrefix(k.Origin.Digest, "sha256:")) {
					t.Errorf("origin = %+v, sha256 %s: want the manifest digest", k.Origin, k.SHA256)
				}
				if (k.Config != "") != tc.config {
					t.Errorf("config = %q, want one: %v", k.Config, tc.config)
				}
				switch {
				case tc.btf:
					got, err := os.ReadFile(k.BTF)
					if err != nil || !bytes.Equal(got, kerneltest.BTF(t, tc.want)) {
						t.Errorf("BTF %q: %d bytes, %v; want the kernel's own BTF", k.BTF, len(got), err)
					}
				case k.BTF != "":
					t.Errorf("BTF = %q, want none", k.BTF)
				}
				// Only what booting needs is kept: no debug vmlinux, no busybox.
				var names []string
				filepath.WalkDir(filepath.Dir(filepath.Dir(k.Image)), func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && !strings.Contains(p, "/lib/modules/") {
						names = append(names, d.Name())
					}
					return nil
				})
				for _, n := range names {
					if strings.HasPrefix(n, "vmlinux-") || n == "busybox" || strings.HasPrefix(n, "System.map") {
						t.Errorf("kept %s (all: %v)", n, names)
					}
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
		ref := host + "/cilium/ci-kernels@" + indexDigest
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
			{host + "/cilium/ci-kernels:nope", kernels.X86_64, kernels.ErrNotFound, "no such repository or tag"},
			{host + "/nothere:1", kernels.X86_64, kernels.ErrNotFound, "no such repository or tag"},
			{host + "/lvh-images/kernel-images:rhel8.10", kernels.X86_64, kernels.ErrNotFound,
				"no such repository or tag (little-vm-helper tags are <version>-main or <version>-<YYYYMMDD.HHMMSS>, e.g. rhel8.10-main)"},
			{host + "/empty:1", kernels.X86_64, kernels.ErrNotAKernel, "has no /boot/vmlinuz"},
			{host + "/cilium/ci-kernels:6.1", kernels.ARM64, kernels.ErrWrongArch,
				"is a single linux/amd64 image (its config says so), want linux/arm64; remove arm64 from the kernel's arch list (ci-kernels builds arm64 only for its mainline, stable and longterm tags)"},
			{host + "/lvh-images/kernel-images:rhel8.10-20260817.013106", kernels.ARM64, kernels.ErrNotFound,
				"has no linux/arm64 variant (it has: linux/amd64); remove arm64 from the kernel's arch list (the little-vm-helper rhel8.x and rhel9.x kernels are amd64 only)"},
			{"127.0.0.1:1/ci-kernels:6.1", kernels.X86_64, kernels.ErrUnreachable, "check the network"},
		} {
			t.Run(tc.ref+"/"+string(tc.arch), func(t *testing.T) {
				c := testCache(t)
				fetches.Reset()
				_, err := kernels.Resolve(ctx, "k", kernels.Spec{OCI: tc.ref}, tc.arch, kernels.Options{Cache: c, Logger: quiet()})
				// A kernel for another arch is refused from the index or
				// the image's config: not one layer is downloaded.
				if errors.Is(err, kernels.ErrWrongArch) || strings.Contains(tc.msg, "variant") {
					for _, img := range []v1.Image{ciAMD, lvhAMD} {
						for _, l := range kerneltest.LayerDigests(t, img) {
							if slices.Contains(fetches.Blobs(), l) {
								t.Errorf("layer %s was downloaded (blobs fetched: %v)", l, fetches.Blobs())
							}
						}
					}
				}
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
