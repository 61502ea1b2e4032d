package kernels

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResolveDebianNetwork resolves bookworm from the real mirror. Opt in
// with VMRUNNER_NETWORK_TESTS=1; VMRUNNER_CACHE chooses the cache (default:
// a fresh one, so the figures logged are cold).
func TestResolveDebianNetwork(t *testing.T) {
	if os.Getenv("VMRUNNER_NETWORK_TESTS") != "1" {
		t.Skip("set VMRUNNER_NETWORK_TESTS=1 to download real Debian kernels")
	}
	dir := os.Getenv("VMRUNNER_CACHE")
	if dir == "" {
		dir = t.TempDir()
	}
	cache, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range Arches {
		t.Run(string(arch), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			spec := Spec{Debian: &DebianSpec{Suite: "bookworm"}}
			start := time.Now()
			k, err := Resolve(ctx, "6.1", spec, arch, Options{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first resolve: %v: %s %s", time.Since(start), k.Origin.Package, k.Origin.Version)
			if !strings.HasPrefix(k.Release, "6.1.0-") {
				t.Errorf("Release = %q, want 6.1.0-*", k.Release)
			}
			for _, p := range []string{k.Image, k.Uncompressed, k.Config, k.Modules,
				filepath.Join(k.Modules, "kernel/drivers/virtio")} {
				if _, err := os.Stat(p); err != nil || p == "" {
					t.Errorf("missing %q: %v", p, err)
				}
			}
			info, err := Inspect(k.Uncompressed)
			if err != nil {
				t.Fatal(err)
			}
			if info.Arch != arch || (arch == X86_64 && !info.PVH) {
				t.Errorf("Inspect(%s) = %+v", k.Uncompressed, info)
			}

			start = time.Now()
			k2, err := Resolve(ctx, "6.1", spec, arch, Options{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			warm := time.Since(start)
			t.Logf("warm resolve: %v", warm)
			if k2.SHA256 != k.SHA256 || warm > 100*time.Millisecond {
				t.Errorf("warm resolve gave %s in %v, want %s in < 100ms", k2.SHA256, warm, k.SHA256)
			}
		})
	}
}

// TestInReleaseSignaturesNetwork checks the real archive keyring verifies
// the suites vmrunner's matrix uses.
func TestInReleaseSignaturesNetwork(t *testing.T) {
	if os.Getenv("VMRUNNER_NETWORK_TESTS") != "1" {
		t.Skip("set VMRUNNER_NETWORK_TESTS=1 to read the real Debian mirror")
	}
	keyring, err := loadKeyring("", quietLogger())
	if err != nil || keyring == nil {
		t.Skipf("no Debian archive keyring (%v): apt-get install debian-archive-keyring", err)
	}
	f := &fetcher{client: defaultClient, log: quietLogger()}
	for _, suite := range []string{"bullseye", "bookworm", "trixie", "bookworm-backports", "sid"} {
		data, err := f.readAll(context.Background(), DefaultMirror+"/dists/"+suite+"/InRelease", 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseInRelease(data, keyring); err != nil {
			t.Errorf("%s: %v", suite, err)
		}
		tampered := strings.Replace(string(data), "\nCodename: ", "\nCodename: x", 1)
		if _, err := parseInRelease([]byte(tampered), keyring); !errors.Is(err, ErrSignature) {
			t.Errorf("%s tampered: err = %v, want ErrSignature", suite, err)
		}
	}
}
