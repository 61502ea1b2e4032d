package kernels_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

func TestResolveMainline(t *testing.T) {
	ctx := context.Background()
	for _, arch := range kernels.Arches {
		t.Run(string(arch), func(t *testing.T) {
			want := kerneltest.Debian(t, arch)
			srv := kerneltest.NewMainline(t)
			urls, shas := srv.Publish(t, "v6.12", want)
			c := testCache(t)
			spec := kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v6.12", URL: srv.Root()}}
			k, err := kernels.Resolve(ctx, "m", spec, arch, kernels.Options{Cache: c, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			checkKernel(t, k, want)
			if k.Origin.Type != "ubuntu-mainline" || len(k.Origin.Files) != 2 ||
				k.Origin.Files[0].URL != urls[0] || k.Origin.Files[1].SHA256 != shas[1] {
				t.Errorf("origin = %+v, want the debs %v %v", k.Origin, urls, shas)
			}
			// Warm: the version directory is not read again.
			srv.Close()
			if k2, err := kernels.Resolve(ctx, "m", spec, arch, kernels.Options{Cache: c, Logger: quiet()}); err != nil || k2.SHA256 != k.SHA256 {
				t.Errorf("warm resolve = %v, %v", k2, err)
			}
		})
	}
}

func TestResolveMainlineErrors(t *testing.T) {
	ctx := context.Background()
	want := kerneltest.Debian(t, kernels.X86_64)
	for _, tc := range []struct {
		name  string
		setup func(srv *kerneltest.Mainline, urls []string)
		want  error
		msg   string
	}{
		{"missing version", func(srv *kerneltest.Mainline, _ []string) {
			srv.Delete("/mainline/v6.12/amd64/")
		}, kernels.ErrNotFound, "ubuntu-mainline v6.12 has no linux-image-*-generic deb for amd64 under http://"},
		{"wrong checksum", func(srv *kerneltest.Mainline, _ []string) {
			srv.Put("/mainline/v6.12/amd64/CHECKSUMS", []byte(strings.Repeat("0", 64)+"  linux-modules-6.12.0-060000-generic_6.12.0-060000.202401010000_amd64.deb\n"+
				strings.Repeat("1", 64)+"  linux-image-unsigned-6.12.0-060000-generic_6.12.0-060000.202401010000_amd64.deb\n"))
		}, kernels.ErrChecksum, "sha256"},
		{"deb 404", func(srv *kerneltest.Mainline, urls []string) {
			srv.Delete(strings.TrimPrefix(urls[1], srv.URL))
		}, kernels.ErrNotFound, "(404)"},
		{"truncated download", func(srv *kerneltest.Mainline, urls []string) {
			srv.Truncate[strings.TrimPrefix(urls[0], srv.URL)] = true
		}, kernels.ErrUnreachable, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := kerneltest.NewMainline(t)
			urls, _ := srv.Publish(t, "v6.12", want)
			tc.setup(srv, urls)
			c := testCache(t)
			spec := kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v6.12", URL: srv.Root()}}
			_, err := kernels.Resolve(ctx, "m", spec, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line wrapping %v containing %q", err, tc.want, tc.msg)
			}
			for _, e := range entries(t, c) {
				if strings.HasPrefix(e, "kernels/") || strings.Contains(e, ".tmp") {
					t.Errorf("cache holds %s after a failure", e)
				}
			}
			// Fixed on the server, the next run succeeds.
			srv2 := kerneltest.NewMainline(t)
			srv2.Publish(t, "v6.12", want)
			spec.Mainline.URL = srv2.Root()
			if _, err := kernels.Resolve(ctx, "m", spec, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet(), Refresh: true}); err != nil {
				t.Fatalf("second run: %v", err)
			}
		})
	}
}

func TestResolveDeb(t *testing.T) {
	ctx := context.Background()
	want := kerneltest.Debian(t, kernels.X86_64)
	srv := kerneltest.NewMainline(t)
	urls, shas := srv.Publish(t, "v6.12", want)
	one := kerneltest.Deb(t, "linux-image-test", "1", "amd64", append(kerneltest.Files(t, want, kerneltest.ImageDeb), kerneltest.Files(t, want, kerneltest.ModulesDeb)...))
	srv.Put("/one.deb", one)
	dir := t.TempDir()
	imgDeb, modDeb := writeTemp(t, dir, "image.deb", fetch(t, urls[0])), writeTemp(t, dir, "modules.deb", fetch(t, urls[1]))

	for _, tc := range []struct {
		name string
		spec kernels.DebSpec
	}{
		{"url", kernels.DebSpec{URL: srv.URL + "/one.deb", SHA256: kerneltest.SHA256(one)}},
		{"urls", kernels.DebSpec{URLs: urls, SHA256s: shas}},
		{"files", kernels.DebSpec{Files: []string{imgDeb, modDeb}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := kernels.Resolve(ctx, "d", kernels.Spec{Deb: &tc.spec}, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			checkKernel(t, k, want)
		})
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			spec kernels.DebSpec
			want error
			msg  string
		}{
			{"checksum mismatch", kernels.DebSpec{URL: srv.URL + "/one.deb", SHA256: strings.Repeat("a", 64)}, kernels.ErrChecksum, "sha256"},
			{"404", kernels.DebSpec{URL: srv.URL + "/nope.deb", SHA256: strings.Repeat("a", 64)}, kernels.ErrNotFound, "nope.deb (404)"},
			{"no checksum", kernels.DebSpec{URL: srv.URL + "/one.deb"}, kernels.ErrBadInput, "expected 64 hex digits"},
			{"not a deb", kernels.DebSpec{File: writeTemp(t, dir, "x.deb", []byte("hello"))}, kernels.ErrNotAKernel, "not a .deb"},
			{"modules only", kernels.DebSpec{File: modDeb}, kernels.ErrNotAKernel, "no kernel image"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := testCache(t)
				_, err := kernels.Resolve(ctx, "d", kernels.Spec{Deb: &tc.spec}, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
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
