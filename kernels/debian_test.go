package kernels

import (
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// amd64Deb is a kernel package whose bzImage carries a PVH vmlinux
// compressed as payload.
func amd64Deb(t testing.TB, name, version, release, payload, dataExt string) pkg {
	vmlinux := tinyELF(elf.EM_X86_64, linuxNote, pvhNote)
	img := bzImageOf(compressPayload(t, payload, vmlinux), release+" (debian-kernel@lists.debian.org) #1 SMP", true)
	return pkg{Name: name, Version: version, Arch: "amd64", Deb: buildDeb(t, name, version, "amd64", dataExt, kernelFiles(release, img, ""))}
}

func arm64Deb(t testing.TB, name, version, release string) pkg {
	files := kernelFiles(release, gzipped(arm64Image()), "usr/lib/modules")
	return pkg{Name: name, Version: version, Arch: "arm64", Deb: buildDeb(t, name, version, "arm64", "xz", files)}
}

// bookworm is a suite with several ABIs and flavours: the newest
// amd64 kernel is 6.1.0-50 6.1.176-1 even though rt and cloud kernels
// have higher versions.
func bookworm(t testing.TB) []pkg {
	return []pkg{
		amd64Deb(t, "linux-image-6.1.0-47-amd64-unsigned", "6.1.170-3", "6.1.0-47-amd64", formatXZ, "xz"),
		amd64Deb(t, "linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", "6.1.0-50-amd64", formatXZ, "xz"),
		amd64Deb(t, "linux-image-6.1.0-50-rt-amd64-unsigned", "6.1.199-1", "6.1.0-50-rt-amd64", formatGzip, "gz"),
		amd64Deb(t, "linux-image-6.1.0-50-cloud-amd64-unsigned", "6.1.199-1", "6.1.0-50-cloud-amd64", formatLZ4, "gz"),
		arm64Deb(t, "linux-image-6.1.0-50-cloud-arm64-unsigned", "6.1.176-1", "6.1.0-50-cloud-arm64"),
		arm64Deb(t, "linux-image-6.1.0-50-arm64-unsigned", "6.1.199-1", "6.1.0-50-arm64"),
	}
}

func TestResolveDebian(t *testing.T) {
	key := testKey(t, 0)
	m := newMirror(t)
	m.publish(t, "bookworm", bookworm(t), testKey(t, 1), key) // only the second signer is trusted
	keyring := writeKeyring(t, key)

	tests := []struct {
		arch        Arch
		flavour     string
		wantPackage string
		wantRelease string
		wantUnc     string
	}{
		{X86_64, "", "linux-image-6.1.0-50-amd64-unsigned", "6.1.0-50-amd64", "vmlinux"},
		{X86_64, "cloud-amd64", "linux-image-6.1.0-50-cloud-amd64-unsigned", "6.1.0-50-cloud-amd64", "vmlinux"},
		{X86_64, "rt-amd64", "linux-image-6.1.0-50-rt-amd64-unsigned", "6.1.0-50-rt-amd64", "vmlinux"},
		{ARM64, "", "linux-image-6.1.0-50-cloud-arm64-unsigned", "6.1.0-50-cloud-arm64", "Image"},
		{ARM64, "arm64", "linux-image-6.1.0-50-arm64-unsigned", "6.1.0-50-arm64", "Image"},
	}
	for _, tt := range tests {
		t.Run(string(tt.arch)+"/"+tt.flavour, func(t *testing.T) {
			cache, err := OpenCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Cache: cache, Client: m.Client(), Keyring: keyring, Logger: quietLogger()}
			spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian/", Flavour: tt.flavour}}
			k, err := Resolve(context.Background(), "6.1", spec, tt.arch, opts)
			if err != nil {
				t.Fatal(err)
			}
			if k.Name != "6.1" || k.Arch != tt.arch || k.Release != tt.wantRelease || k.Origin.Package != tt.wantPackage {
				t.Errorf("got %+v, want package %s release %s", k, tt.wantPackage, tt.wantRelease)
			}
			deb := m.files["/debian/pool/main/l/linux/"+filepath.Base(k.Origin.URL)]
			if k.SHA256 != sha256Hex(deb) || k.Origin.Type != "debian" || k.Origin.Suite != "bookworm" ||
				!strings.HasPrefix(k.Origin.URL, m.URL+"/debian/pool/") {
				t.Errorf("identity: sha256 %s origin %+v", k.SHA256, k.Origin)
			}
			dir := filepath.Join(cache.Dir, "kernels", k.SHA256)
			want := map[string]string{
				"Image":        filepath.Join(dir, "boot", "vmlinuz-"+tt.wantRelease),
				"Uncompressed": filepath.Join(dir, tt.wantUnc),
				"Config":       filepath.Join(dir, "boot", "config-"+tt.wantRelease),
				"Modules":      filepath.Join(dir, "lib", "modules", tt.wantRelease),
			}
			got := map[string]string{"Image": k.Image, "Uncompressed": k.Uncompressed, "Config": k.Config, "Modules": k.Modules}
			for field, w := range want {
				if got[field] != w {
					t.Errorf("%s = %q, want %q", field, got[field], w)
				}
				if _, err := os.Stat(w); err != nil {
					t.Error(err)
				}
			}
			for _, f := range []string{"kernel/drivers/virtio/virtio_mmio.ko", "kernel/drivers/char/virtio_console.ko.xz", "modules.dep"} {
				if _, err := os.Stat(filepath.Join(k.Modules, f)); err != nil {
					t.Errorf("module tree: %v", err)
				}
			}
			for _, skipped := range []string{"boot/System.map-" + tt.wantRelease, "usr", "lib/modules/" + tt.wantRelease + "/build"} {
				if _, err := os.Lstat(filepath.Join(dir, skipped)); err == nil {
					t.Errorf("%s extracted, want it skipped", skipped)
				}
			}
			info, err := Inspect(k.Uncompressed)
			if err != nil {
				t.Fatal(err)
			}
			if info.Arch != tt.arch || (tt.arch == X86_64 && !info.PVH) {
				t.Errorf("Inspect(Uncompressed) = %+v", info)
			}

			// Warm: nothing fetched, fast, same kernel.
			before := m.total()
			start := time.Now()
			k2, err := Resolve(context.Background(), "again", spec, tt.arch, opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("warm Resolve took %v", d)
			}
			if n := m.total() - before; n != 0 {
				t.Errorf("warm Resolve made %d requests", n)
			}
			k.Name = "again"
			if a, b := mustJSON(t, k), mustJSON(t, k2); a != b {
				t.Errorf("warm Resolve = %s, want %s", b, a)
			}

			// Refresh re-reads the index but downloads no package.
			before = m.total()
			opts.Refresh = true
			if _, err := Resolve(context.Background(), "6.1", spec, tt.arch, opts); err != nil {
				t.Fatal(err)
			}
			if n := m.total() - before; n != 2 {
				t.Errorf("Refresh made %d requests, want 2 (InRelease, Packages.gz)", n)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestResolveDebianPayloads runs each supported bzImage compression
// through the whole pipeline.
func TestResolveDebianPayloads(t *testing.T) {
	for _, format := range []string{formatGzip, formatXZ, formatLZMA, formatZstd, formatLZ4} {
		t.Run(format, func(t *testing.T) {
			m := newMirror(t)
			m.publish(t, "trixie", []pkg{amd64Deb(t, "linux-image-6.12.117+deb13-amd64-unsigned", "6.12.117-1", "6.12.117+deb13-amd64", format, "gz")},
				testKey(t, 0))
			cache, _ := OpenCache(t.TempDir())
			spec := Spec{Debian: &DebianSpec{Suite: "trixie", Mirror: m.URL + "/debian"}}
			k, err := Resolve(context.Background(), "6.12", spec, X86_64,
				Options{Cache: cache, Client: m.Client(), Keyring: writeKeyring(t, testKey(t, 0)), Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if k.Release != "6.12.117+deb13-amd64" || filepath.Base(k.Uncompressed) != "vmlinux" {
				t.Errorf("got %+v", k)
			}
		})
	}
}
