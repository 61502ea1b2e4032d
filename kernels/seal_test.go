package kernels

import (
	"bytes"
	"context"
	"errors"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sealFixture is a cache holding bookworm's amd64 kernels from a test
// mirror, and a logger whose output the test reads.
type sealFixture struct {
	m     *mirror
	cache *Cache
	logs  *bytes.Buffer
	opts  Options
}

func newSealFixture(t *testing.T) *sealFixture {
	t.Helper()
	key := testKey(t, 0)
	m := newMirror(t)
	m.publish(t, "bookworm", bookworm(t), key)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	return &sealFixture{m: m, cache: cache, logs: &logs, opts: Options{Cache: cache, Client: m.Client(), Keyring: writeKeyring(t, key),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
}

func (f *sealFixture) resolve(t *testing.T, flavour string, arch Arch) (*Kernel, error) {
	t.Helper()
	spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: f.m.URL + "/debian", Flavour: flavour}}
	return Resolve(context.Background(), "6.1", spec, arch, f.opts)
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	sum, err := fileutil.FileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestSealedKernelCache damages a cached kernel in each way a disk, a
// person or a crash can, and checks that the next resolve finds it,
// extracts the kernel again from its download and returns it intact.
func TestSealedKernelCache(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, k *Kernel)
		problem string // in the warning
	}{
		{"byte-patched vmlinux", func(t *testing.T, k *Kernel) {
			f, err := os.OpenFile(k.Uncompressed, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0x90}, 100)
			f.Close()
			// Even with the old modification time, the content is what counts
			// once the time is put back: the size is the same, the time
			// differs from the seal's, the hash tells.
		}, "vmlinux was modified"},
		{"truncated image", func(t *testing.T, k *Kernel) {
			os.Truncate(k.Image, 10)
		}, "boot/vmlinuz-6.1.0-50-amd64 has 10 bytes"},
		{"deleted virtio_console.ko", func(t *testing.T, k *Kernel) {
			os.Remove(filepath.Join(k.Modules, "kernel/drivers/char/virtio_console.ko.xz"))
		}, "virtio_console.ko.xz is missing"},
		{"added module", func(t *testing.T, k *Kernel) {
			os.WriteFile(filepath.Join(k.Modules, "kernel/evil.ko"), []byte("\x7fELF"), 0o644)
		}, "kernel/evil.ko was added"},
		{"edited kernel.json", func(t *testing.T, k *Kernel) {
			p := filepath.Join(filepath.Dir(filepath.Dir(k.Image)), kernelRecord)
			data, _ := os.ReadFile(p)
			// Same size, so that only the hash can tell.
			os.WriteFile(p, bytes.Replace(data, []byte(`"arch": "x86_64"`), []byte(`"arch": "arm64_"`), 1), 0o644)
		}, "kernel.json was modified"},
		{"no seal (an older vmrunner)", func(t *testing.T, k *Kernel) {
			os.Remove(filepath.Join(filepath.Dir(filepath.Dir(k.Image)), sealName))
		}, "has no seal.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSealFixture(t)
			k, err := f.resolve(t, "", X86_64)
			if err != nil {
				t.Fatal(err)
			}
			sums := map[string]string{}
			for _, p := range []string{k.Image, k.Uncompressed, filepath.Join(k.Modules, "kernel/drivers/char/virtio_console.ko.xz")} {
				sums[p] = fileSum(t, p)
			}
			tc.damage(t, k)
			requests := f.m.total()
			f.logs.Reset()

			k2, err := f.resolve(t, "", X86_64)
			if err != nil {
				t.Fatalf("resolve after damage: %v", err)
			}
			if k2.SHA256 != k.SHA256 || k2.Release != k.Release || k2.Arch != X86_64 {
				t.Errorf("repaired kernel = %+v, want %+v", k2, k)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "cached kernel damaged, extracting it again") || !strings.Contains(logs, tc.problem) {
				t.Errorf("logs do not say the kernel was damaged (%q):\n%s", tc.problem, logs)
			}
			for p, want := range sums {
				if got := fileSum(t, p); got != want {
					t.Errorf("%s: sha256 %s after repair, want %s", p, got, want)
				}
			}
			if _, err := os.Stat(filepath.Join(k.Modules, "kernel/evil.ko")); err == nil {
				t.Error("the added module is still there")
			}
			if n := f.m.total() - requests; n != 0 {
				t.Errorf("repair made %d requests: it should extract the cached .deb again", n)
			}
			// Sealed again: the next resolve is quiet.
			f.logs.Reset()
			if _, err := f.resolve(t, "", X86_64); err != nil || strings.Contains(f.logs.String(), "damaged") {
				t.Errorf("resolve after repair: %v\n%s", err, f.logs.String())
			}
		})
	}
}

// TestSealNewTime: a file whose time changed but not its content (a cache
// copied without times) is hashed once, accepted and resealed.
func TestSealNewTime(t *testing.T) {
	f := newSealFixture(t)
	k, err := f.resolve(t, "", X86_64)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(k.Uncompressed, later, later)
	dir := filepath.Dir(filepath.Dir(k.Image))
	if err := checkSeal(dir); err != nil {
		t.Fatalf("same content, new time: %v", err)
	}
	var s seal
	if err := readJSON(filepath.Join(dir, sealName), &s); err != nil {
		t.Fatal(err)
	}
	for _, sf := range s.Files {
		if sf.Path == "vmlinux" && sf.MTime != later.UnixNano() {
			t.Errorf("seal keeps the old time of vmlinux: %d, want %d", sf.MTime, later.UnixNano())
		}
	}
	// And a patch that keeps size and time is still found after a time change.
	os.WriteFile(k.Uncompressed+".x", nil, 0o644)
	if err := checkSeal(dir); !errors.Is(err, ErrCacheDamaged) || !strings.Contains(err.Error(), "vmlinux.x was added") {
		t.Errorf("added file: %v", err)
	}
}

// TestForgedResolution: a cached resolution whose SHA-256 points at
// another package (another flavour's, another arch's, already extracted or
// only downloaded) never boots that kernel under this name: the mirror is
// read again, and offline it is an error.
func TestForgedResolution(t *testing.T) {
	f := newSealFixture(t)
	want, err := f.resolve(t, "", X86_64)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.resolve(t, "rt-amd64", X86_64)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := f.resolve(t, "", ARM64)
	if err != nil {
		t.Fatal(err)
	}
	indexes, _ := filepath.Glob(filepath.Join(f.cache.Dir, "index", "debian", "bookworm_amd64_amd64_*.json"))
	if len(indexes) != 1 {
		t.Fatalf("index files %v", indexes)
	}
	index := indexes[0]
	forge := func(sha string) {
		t.Helper()
		var r debianResolution
		if err := readJSON(index, &r); err != nil {
			t.Fatal(err)
		}
		r.Package.SHA256 = sha
		r.Fetched = time.Now().UTC() // fresh: the warm path would trust it
		if err := writeJSONAtomic(index, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"another flavour's kernel", func() { forge(rt.SHA256) }},
		{"another arch's kernel", func() { forge(arm.SHA256) }},
		{"another arch's download, not extracted", func() {
			forge(arm.SHA256)
			os.RemoveAll(f.cache.kernelDir(arm.SHA256))
		}},
		{"another suite's index file", func() {
			var r debianResolution
			readJSON(index, &r)
			r.Suite, r.Package.SHA256 = "trixie", rt.SHA256
			writeJSONAtomic(index, &r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			f.opts.Offline = true
			if k, err := f.resolve(t, "", X86_64); err == nil {
				t.Errorf("offline with a forged resolution: got %s %s, want an error", k.Release, k.Arch)
			} else if !errors.Is(err, ErrUnreachable) {
				t.Errorf("offline with a forged resolution: %v, want unreachable (not cached)", err)
			}
			f.opts.Offline = false
			f.logs.Reset()
			k, err := f.resolve(t, "", X86_64)
			if err != nil {
				t.Fatal(err)
			}
			if k.SHA256 != want.SHA256 || k.Release != "6.1.0-50-amd64" || k.Arch != X86_64 || k.Origin.Package != "linux-image-6.1.0-50-amd64-unsigned" {
				t.Errorf("forged resolution booted %s %s (%s), want %s", k.Release, k.Arch, k.SHA256, want.Release)
			}
		})
	}
}
