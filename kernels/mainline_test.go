package kernels_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
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
		{"missing arch folder", func(srv *kerneltest.Mainline, _ []string) {
			srv.Put("/mainline/v6.12/", []byte("<a href=\"amd64/\">amd64/</a>"))
			srv.Delete("/mainline/v6.12/amd64/")
		}, kernels.ErrNotFound, "ubuntu-mainline v6.12 has no linux-image-*-generic deb for amd64 under http://"},
		{"missing version", func(srv *kerneltest.Mainline, _ []string) {
			srv.Delete("/mainline/v6.12/")
		}, kernels.ErrNotFound, "ubuntu-mainline v6.12 has no directory http://"},
		{"wrong checksum", func(srv *kerneltest.Mainline, _ []string) {
			srv.Put("/mainline/v6.12/amd64/CHECKSUMS", []byte("# Checksums-Sha256:\n"+strings.Repeat("0", 64)+"  linux-modules-6.12.0-061200-generic_6.12.0-061200.202401010000_amd64.deb\n"+
				strings.Repeat("1", 64)+"  linux-image-unsigned-6.12.0-061200-generic_6.12.0-061200.202401010000_amd64.deb\n"))
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

// mainlineCase resolves a version of a fixture server for arch.
func resolveFrom(t *testing.T, srv *kerneltest.Mainline, version string, arch kernels.Arch, log *slog.Logger, keyring string) (*kernels.Kernel, error) {
	t.Helper()
	if log == nil {
		log = quiet()
	}
	spec := kernels.Spec{Mainline: &kernels.MainlineSpec{Version: version, URL: srv.Root(), Keyring: keyring}}
	return kernels.Resolve(context.Background(), "m", spec, arch, kernels.Options{Cache: testCache(t), Logger: log})
}

// debsOf picks the published debs of one arch and stamp, image first.
func debsOf(debs []kerneltest.MainlineDeb, arch kernels.Arch, stamp string) []kernels.File {
	var files []kernels.File
	for _, kind := range []string{"image", "modules"} {
		for _, d := range debs {
			if d.Arch == arch && d.Stamp == stamp && d.Kind == kind {
				files = append(files, kernels.File{URL: d.URL, SHA256: d.SHA256})
			}
		}
	}
	return files
}

func TestResolveMainlineLayouts(t *testing.T) {
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	arm64 := kerneltest.Debian(t, kernels.ARM64)
	both := []*kernels.Kernel{amd64, arm64}
	older, newer := "202201091830", "202201092355" // v5.16/amd64 held these two

	for _, tc := range []struct {
		name  string
		build kerneltest.MainlineBuild
		arch  kernels.Arch
		stamp string // the build that must be chosen
		dir   string // the folder it must come from, below the root
	}{
		{"flat v4.18 amd64", kerneltest.MainlineBuild{Version: "v4.18", Layout: kerneltest.Flat, Kernels: both}, kernels.X86_64, kerneltest.DefaultStamp, "/v4.18"},
		{"flat v4.18 arm64", kerneltest.MainlineBuild{Version: "v4.18", Layout: kerneltest.Flat, Kernels: both}, kernels.ARM64, kerneltest.DefaultStamp, "/v4.18"},
		{"per arch v5.8 amd64", kerneltest.MainlineBuild{Version: "v5.8", Kernels: both}, kernels.X86_64, kerneltest.DefaultStamp, "/v5.8/amd64"},
		{"per arch v5.8 arm64", kerneltest.MainlineBuild{Version: "v5.8", Kernels: both}, kernels.ARM64, kerneltest.DefaultStamp, "/v5.8/arm64"},
		{"two builds: the newest", kerneltest.MainlineBuild{Version: "v5.16", Kernels: both,
			Stamps: []kerneltest.MainlineStamp{{ID: older}, {ID: newer}}}, kernels.X86_64, newer, "/v5.16/amd64"},
		{"two builds: the newest is not in CHECKSUMS", kerneltest.MainlineBuild{Version: "v5.16", Kernels: both,
			Stamps: []kerneltest.MainlineStamp{{ID: older}, {ID: newer, Unlisted: true}}}, kernels.X86_64, older, "/v5.16/amd64"},
		{"two builds: the newest has no modules, never mixed", kerneltest.MainlineBuild{Version: "v5.16", Kernels: both,
			Stamps: []kerneltest.MainlineStamp{{ID: older}, {ID: newer, NoModules: true}}}, kernels.ARM64, older, "/v5.16/arm64"},
		{"flat, two builds", kerneltest.MainlineBuild{Version: "v4.18", Layout: kerneltest.Flat, Kernels: both,
			Stamps: []kerneltest.MainlineStamp{{ID: older}, {ID: newer}}}, kernels.ARM64, newer, "/v4.18"},
		{"arm64 failed, amd64 built", kerneltest.MainlineBuild{Version: "v6.1.1", Kernels: []*kernels.Kernel{amd64},
			Failed: []kernels.Arch{kernels.ARM64}}, kernels.X86_64, kerneltest.DefaultStamp, "/v6.1.1/amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := kerneltest.NewMainline(t)
			debs := srv.PublishBuild(t, tc.build)
			k, err := resolveFrom(t, srv, tc.build.Version, tc.arch, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			checkKernel(t, k, map[kernels.Arch]*kernels.Kernel{kernels.X86_64: amd64, kernels.ARM64: arm64}[tc.arch])
			want := debsOf(debs, tc.arch, tc.stamp)
			if len(want) != 2 || !slices.Equal(k.Origin.Files, want) {
				t.Errorf("origin files = %+v\nwant %+v", k.Origin.Files, want)
			}
			if k.Origin.URL != srv.Root()+tc.dir+"/" {
				t.Errorf("origin url = %s, want %s", k.Origin.URL, srv.Root()+tc.dir+"/")
			}
		})
	}
}

func TestResolveMainlineMissingBuild(t *testing.T) {
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	arm64 := kerneltest.Debian(t, kernels.ARM64)
	srv := kerneltest.NewMainline(t)
	// 6.1.1's arm64 build failed; 6.1 and 6.1.3 have one, 6.1.2 does not
	// either, 6.2 (another series) does.
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.1", Kernels: []*kernels.Kernel{amd64, arm64}})
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.1.1", Kernels: []*kernels.Kernel{amd64}, Failed: []kernels.Arch{kernels.ARM64}})
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.1.2", Kernels: []*kernels.Kernel{amd64}})
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.1.3", Kernels: []*kernels.Kernel{amd64, arm64}})
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.2", Kernels: []*kernels.Kernel{amd64, arm64}})
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v4.18", Layout: kerneltest.Flat, Kernels: []*kernels.Kernel{amd64}, Failed: []kernels.Arch{kernels.ARM64}})

	for _, tc := range []struct {
		version string
		msgs    []string
	}{
		{"v6.1.1", []string{"ubuntu-mainline v6.1.1 has no linux-image-*-generic deb for arm64", `its page says "Test arm64/build failed (rc=2, on=arm64`,
			"the nearest point releases with a arm64 build: v6.1, v6.1.3"}},
		{"v6.1.2", []string{"(it lists no arm64 build)", "nearest point releases with a arm64 build: v6.1, v6.1.3"}},
		{"v4.18", []string{`its page says "Build for arm64 failed (see BUILD.LOG.arm64):"`, "see " + srv.Root() + "/ for other versions"}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			_, err := resolveFrom(t, srv, tc.version, kernels.ARM64, nil, "")
			if !errors.Is(err, kernels.ErrNotFound) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line wrapping ErrNotFound", err)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %v\nwant it to contain %q", err, m)
				}
			}
		})
	}
}

func TestResolveMainlineSignature(t *testing.T) {
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	srv := kerneltest.NewMainline(t)
	srv.PublishBuild(t, kerneltest.MainlineBuild{Version: "v6.12", Kernels: []*kernels.Kernel{amd64}})
	good := kerneltest.Keyring(t, t.TempDir(), kerneltest.MainlineKey(t))
	other := kerneltest.Keyring(t, t.TempDir(), kerneltest.OtherKey(t))

	t.Run("verified", func(t *testing.T) {
		var logs strings.Builder
		k, err := resolveFrom(t, srv, "v6.12", kernels.X86_64, slog.New(slog.NewTextHandler(&logs, nil)), good)
		if err != nil {
			t.Fatal(err)
		}
		checkKernel(t, k, amd64)
		if strings.Contains(logs.String(), "not verified") {
			t.Errorf("warned although a keyring was given:\n%s", logs.String())
		}
	})
	t.Run("no keyring warns", func(t *testing.T) {
		var logs strings.Builder
		if _, err := resolveFrom(t, srv, "v6.12", kernels.X86_64, slog.New(slog.NewTextHandler(&logs, nil)), ""); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "CHECKSUMS not verified") || !strings.Contains(logs.String(), kernels.MainlineKeyFingerprint) {
			t.Errorf("no warning naming the key:\n%s", logs.String())
		}
	})
	for _, tc := range []struct {
		name    string
		keyring string
		setup   func()
		msg     string
	}{
		{"another key", other, func() {}, "bad signature"},
		{"CHECKSUMS changed after signing", good, func() {
			p := "/mainline/v6.12/amd64/CHECKSUMS"
			srv.Put(p, append(srv.Get(p), "# edited\n"...))
		}, "bad signature"},
		{"no CHECKSUMS.gpg", good, func() { srv.Delete("/mainline/v6.12/amd64/CHECKSUMS.gpg") }, "CHECKSUMS.gpg: bad signature: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			_, err := resolveFrom(t, srv, "v6.12", kernels.X86_64, nil, tc.keyring)
			if !errors.Is(err, kernels.ErrSignature) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrSignature containing %q", err, tc.msg)
			}
		})
	}
}
