package kernels

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPrune(t *testing.T) {
	key := testKey(t, 0)
	m := newMirror(t)
	m.publish(t, "bookworm", bookworm(t), key)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Cache: cache, Client: m.Client(), Keyring: writeKeyring(t, key), Logger: quietLogger()}
	ctx := context.Background()
	resolve := func(flavour string) *Kernel {
		t.Helper()
		k, err := Resolve(ctx, "k", Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian", Flavour: flavour}}, X86_64, opts)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kept, gone := resolve(""), resolve("rt-amd64")
	// A temporary left by a process that died while extracting.
	stale := filepath.Join(cache.Dir, "kernels", ".tmp-"+gone.SHA256+"-123")
	os.MkdirAll(filepath.Join(stale, "boot"), 0o755)
	os.WriteFile(filepath.Join(stale, "boot", "vmlinuz"), []byte("half"), 0o644)
	os.MkdirAll(filepath.Join(cache.Dir, "build", "tree"), 0o755)
	os.WriteFile(filepath.Join(cache.Dir, "build", "tree", ".config"), []byte("CONFIG_BPF=y\n"), 0o644)

	keep := map[string]bool{}
	for _, k := range kept.Keys() {
		keep[k] = true
	}
	paths := func(r PruneResult) []string {
		var ps []string
		for _, e := range r.Removed {
			ps = append(ps, e.Path)
		}
		slices.Sort(ps)
		return ps
	}
	want := []string{
		filepath.Join("blobs", "sha256", gone.SHA256),
		filepath.Join("kernels", ".tmp-"+gone.SHA256+"-123"),
		filepath.Join("kernels", gone.SHA256),
	}

	dry, err := cache.Prune(ctx, keep, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(dry); !slices.Equal(got, want) {
		t.Errorf("dry run would remove %v, want %v", got, want)
	}
	if _, err := os.Stat(gone.Image); err != nil {
		t.Fatalf("dry run removed %s", gone.Image)
	}

	res, err := cache.Prune(ctx, keep, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(res); !slices.Equal(got, want) || res.Kept != 2 || res.Freed() <= 0 || res.KeptBytes <= 0 {
		t.Errorf("removed %v (%d bytes), kept %d (%d bytes); want %v removed, 2 kept", got, res.Freed(), res.Kept, res.KeptBytes, want)
	}
	for _, p := range []string{gone.Image, stale} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	// What is kept still resolves, without a download.
	before := m.total()
	if k := resolve(""); k.SHA256 != kept.SHA256 {
		t.Errorf("kept kernel resolves to %s", k.SHA256)
	}
	if n := m.total() - before; n != 0 {
		t.Errorf("kept kernel: %d requests after prune", n)
	}

	// Everything, with the build directories.
	res, err = cache.Prune(ctx, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{filepath.Join("blobs", "sha256", kept.SHA256), "build", filepath.Join("kernels", kept.SHA256)}
	if got := paths(res); !slices.Equal(got, want) || res.Kept != 0 {
		t.Errorf("--all removed %v, kept %d; want %v", got, res.Kept, want)
	}
}
