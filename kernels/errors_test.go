package kernels

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// listCache lists every file and directory under the cache's blobs/ and
// kernels/, hidden temporaries included.
func listCache(t testing.TB, c *Cache) []string {
	var out []string
	for _, sub := range []string{"blobs/sha256", "kernels"} {
		entries, err := os.ReadDir(filepath.Join(c.Dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

func TestResolveDebianErrors(t *testing.T) {
	key, other := testKey(t, 0), testKey(t, 1)
	good := amd64Deb(t, "linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", "6.1.0-50-amd64", formatGzip, "gz")
	bad := good
	bad.BadSHA = true
	armInAmd64 := arm64Deb(t, "linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", "6.1.0-50-amd64")
	armInAmd64.Arch = "amd64"
	notKernel := pkg{Name: "linux-image-6.1.0-50-amd64-unsigned", Version: "6.1.176-1", Arch: "amd64",
		Deb: buildDeb(t, "linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", "amd64", "gz",
			kernelFiles("6.1.0-50-amd64", []byte("#!/bin/sh\necho not a kernel\n"), ""))}

	tests := []struct {
		name    string
		setup   func(m *mirror) // publish into suite "bookworm"
		suite   string
		flavour string
		keyring string // "" = key; "none" = no keyring at all
		down    bool   // the mirror is unreachable
		want    error
		wantMsg []string
	}{
		{name: "unknown suite", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{good}, key) },
			suite: "bookwrom", want: ErrNotFound, wantMsg: []string{`"bookwrom"`, "bookworm, trixie", "-backports"}},
		{name: "unreachable", down: true, want: ErrUnreachable, wantMsg: []string{"check the network", "mirror:"}},
		{name: "tampered InRelease", setup: func(m *mirror) {
			m.publish(t, "bookworm", []pkg{good}, key)
			p := "/debian/dists/bookworm/InRelease"
			m.put(p, []byte(strings.Replace(string(m.files[p]), "Codename: bookworm", "Codename: bookwurm", 1)))
		}, want: ErrSignature},
		{name: "signed by an unknown key", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{good}, other) }, want: ErrSignature},
		{name: "unsigned with a keyring", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{good}) }, want: ErrSignature},
		{name: "Packages.gz does not match InRelease", setup: func(m *mirror) {
			m.publish(t, "bookworm", []pkg{good}, key)
			m.put("/debian/dists/bookworm/main/binary-amd64/Packages.gz", gzipped([]byte("Package: evil\n")))
		}, want: ErrChecksum},
		{name: "deb does not match Packages", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{bad}, key) }, want: ErrChecksum},
		{name: "truncated download", setup: func(m *mirror) {
			m.publish(t, "bookworm", []pkg{good}, key)
			m.truncate["/debian/pool/main/l/linux/"+good.Name+"_"+good.Version+"_amd64.deb"] = true
		}, want: ErrUnreachable},
		{name: "no such flavour", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{good}, key) },
			flavour: "rt-amd64", want: ErrNotFound, wantMsg: []string{"rt-amd64", "bookworm"}},
		{name: "no index for the arch", setup: func(m *mirror) {
			m.publish(t, "bookworm", []pkg{arm64Deb(t, "linux-image-6.1.0-50-cloud-arm64-unsigned", "6.1.176-1", "6.1.0-50-cloud-arm64")}, key)
		}, want: ErrNotFound, wantMsg: []string{"binary-amd64"}},
		{name: "arm64 kernel in an amd64 package", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{armInAmd64}, key) },
			want: ErrWrongArch, wantMsg: []string{"vmlinuz-6.1.0-50-amd64", "arm64"}},
		{name: "not a kernel", setup: func(m *mirror) { m.publish(t, "bookworm", []pkg{notKernel}, key) },
			want: ErrNotAKernel, wantMsg: []string{"linux-image-6.1.0-50-amd64-unsigned_6.1.176-1_amd64.deb:boot/vmlinuz-6.1.0-50-amd64", "#!/bin/sh"}},
		{name: "bad suite name", suite: "../etc", want: ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t)
			if tt.setup != nil {
				tt.setup(m)
			}
			url := m.URL + "/debian"
			if tt.down {
				m.Close()
			}
			suite := tt.suite
			if suite == "" {
				suite = "bookworm"
			}
			cache, err := OpenCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Cache: cache, Client: &http.Client{}, Keyring: writeKeyring(t, key), Logger: quietLogger()}
			spec := Spec{Debian: &DebianSpec{Suite: suite, Mirror: url, Flavour: tt.flavour}}
			_, err = Resolve(context.Background(), "6.1", spec, X86_64, opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, s := range append(tt.wantMsg, `"6.1"`) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// A verified download may stay; nothing else may.
			for _, left := range listCache(t, cache) {
				if !(errors.Is(err, ErrBadInput) && strings.HasPrefix(left, "blobs/sha256/") && len(left) == len("blobs/sha256/")+64) {
					t.Errorf("failed Resolve left %v in the cache", left)
				}
			}
		})
	}
}

// TestResolveDebianStale uses a resolution older than its TTL when the
// mirror is down, and refuses to when there is none.
func TestResolveDebianStale(t *testing.T) {
	m := newMirror(t)
	m.publish(t, "bookworm", bookworm(t), testKey(t, 0))
	cache, _ := OpenCache(t.TempDir())
	opts := Options{Cache: cache, Client: &http.Client{}, Keyring: writeKeyring(t, testKey(t, 0)), Logger: quietLogger()}
	spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian"}}
	k, err := Resolve(context.Background(), "6.1", spec, X86_64, opts)
	if err != nil {
		t.Fatal(err)
	}

	// Age the resolution past its TTL, then take the mirror away.
	index, _ := filepath.Glob(filepath.Join(cache.Dir, "index", "debian", "bookworm_amd64_amd64_*.json"))
	if len(index) != 1 {
		t.Fatalf("index files: %v", index)
	}
	var res debianResolution
	if err := readJSON(index[0], &res); err != nil {
		t.Fatal(err)
	}
	res.Fetched = time.Now().Add(-resolutionTTL - time.Hour)
	if err := writeJSONAtomic(index[0], &res); err != nil {
		t.Fatal(err)
	}
	before := m.total()
	m.Close()

	for _, refresh := range []bool{false, true} {
		opts.Refresh = refresh
		k2, err := Resolve(context.Background(), "6.1", spec, X86_64, opts)
		if err != nil {
			t.Fatalf("refresh=%v: %v", refresh, err)
		}
		if k2.SHA256 != k.SHA256 || !reflect.DeepEqual(k2.Origin, k.Origin) {
			t.Errorf("stale resolve = %+v, want %+v", k2, k)
		}
	}
	if m.total() != before {
		t.Errorf("requests served after Close")
	}

	_, err = Resolve(context.Background(), "6.1", Spec{Debian: &DebianSpec{Suite: "trixie", Mirror: m.URL + "/debian"}}, X86_64, opts)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("trixie, never resolved, mirror down: err = %v, want ErrUnreachable", err)
	}
}

// TestResolveNoKeyring trusts an unsigned InRelease when no keyring is
// installed (with a warning), and still checks the hashes below it.
func TestResolveNoKeyring(t *testing.T) {
	defaultKeyring = filepath.Join(t.TempDir(), "missing.gpg")
	t.Cleanup(func() { defaultKeyring = DefaultKeyring })
	m := newMirror(t)
	m.publish(t, "bookworm", bookworm(t))
	cache, _ := OpenCache(t.TempDir())
	spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian"}}
	k, err := Resolve(context.Background(), "6.1", spec, ARM64, Options{Cache: cache, Client: m.Client(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if k.Origin.Package != "linux-image-6.1.0-50-cloud-arm64-unsigned" {
		t.Errorf("package %s", k.Origin.Package)
	}
	_, err = Resolve(context.Background(), "6.1", spec, ARM64, Options{Cache: cache, Client: m.Client(), Keyring: "/nonexistent.gpg", Refresh: true})
	if err == nil {
		t.Error("an explicit keyring that does not exist was ignored")
	}
}

func TestResolveBadInput(t *testing.T) {
	cache, _ := OpenCache(t.TempDir())
	for _, tc := range []struct {
		spec Spec
		arch Arch
	}{
		{Spec{}, X86_64},
		{Spec{Debian: &DebianSpec{Suite: "bookworm"}}, "riscv64"},
		{Spec{Debian: &DebianSpec{}}, X86_64},
	} {
		if _, err := Resolve(context.Background(), "k", tc.spec, tc.arch, Options{Cache: cache}); !errors.Is(err, ErrBadInput) {
			t.Errorf("Resolve(%+v, %s): err = %v, want ErrBadInput", tc.spec, tc.arch, err)
		}
	}
}
