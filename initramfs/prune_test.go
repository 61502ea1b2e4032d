package initramfs

import (
	"context"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gofrs/flock"
)

// TestPrune: temporaries of a builder that was killed go, those of a live
// builder (holding the archive's lock) stay; all removes every archive
// that no builder holds.
func TestPrune(t *testing.T) {
	opts, _ := testOptions(t)
	archive, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(archive)
	name := filepath.Base(archive)
	// What a SIGKILL during a build leaves.
	writeFile(t, archive+".4242.tmp", []byte("half an archive"))
	writeFile(t, archive+".sha256.tmp", []byte("half a seal"))
	// A live builder of another archive, writing its temporary now.
	live := filepath.Join(dir, "x-live.cpio")
	writeFile(t, live+".77.tmp", []byte("being written"))
	lock := flock.New(live + ".lock")
	if ok, err := lock.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer lock.Unlock()
	writeFile(t, filepath.Join(dir, "unrelated.txt"), []byte("not Build's"))

	paths := func(rs []fileutil.Removal) []string {
		var ps []string
		for _, r := range rs {
			ps = append(ps, r.Path)
		}
		slices.Sort(ps)
		return ps
	}
	dry, err := Prune(opts.CacheDir, false, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"initramfs/" + name + ".4242.tmp", "initramfs/" + name + ".sha256.tmp"}
	if got := paths(dry); !slices.Equal(got, want) {
		t.Errorf("dry run: %v, want %v", got, want)
	}
	if _, err := os.Stat(archive + ".4242.tmp"); err != nil {
		t.Error("dry run removed a temporary")
	}
	res, err := Prune(opts.CacheDir, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(res); !slices.Equal(got, want) {
		t.Errorf("prune: %v, want %v", got, want)
	}
	for _, p := range []string{archive, archive + ".sha256", live + ".77.tmp"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	// The archive is still used as it is.
	if again, err := Build(context.Background(), opts); err != nil || again != archive {
		t.Fatalf("build after prune: %s, %v", again, err)
	}

	res, err = Prune(opts.CacheDir, true, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"initramfs/" + name, "initramfs/" + name + ".lock", "initramfs/" + name + ".sha256"}
	if got := paths(res); !slices.Equal(got, want) {
		t.Errorf("prune --all: %v, want %v", got, want)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"unrelated.txt", "x-live.cpio.77.tmp", "x-live.cpio.lock"}) {
		t.Errorf("left after prune --all: %v", names)
	}
}
