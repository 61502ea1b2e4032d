package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/internal/atomicfile"
	"github.com/vmrunner/vmrunner/protocol"
)

func testKey() Key {
	return Key{Arch: "x86_64", QEMU: "q", QEMUVersion: "QEMU emulator version 7.2.22", Args: []string{"-M", "microvm"},
		Kernel: "k", Initramfs: "i", MemoryMiB: 512, CPUs: 1, Accel: "tcg"}
}

// Every field of the key is part of the ID.
func TestKeyID(t *testing.T) {
	base := testKey()
	if base.ID() != testKey().ID() {
		t.Fatal("equal keys, different IDs")
	}
	changes := map[string]func(*Key){
		"arch":      func(k *Key) { k.Arch = "arm64" },
		"qemu":      func(k *Key) { k.QEMU = "q2" },
		"version":   func(k *Key) { k.QEMUVersion = "8.0" },
		"args":      func(k *Key) { k.Args = []string{"-M", "microvm", "-device", "pvpanic"} },
		"args join": func(k *Key) { k.Args = []string{"-M microvm"} },
		"kernel":    func(k *Key) { k.Kernel = "k2" },
		"initramfs": func(k *Key) { k.Initramfs = "i2" },
		"memory":    func(k *Key) { k.MemoryMiB = 1024 },
		"cpus":      func(k *Key) { k.CPUs = 2 },
		"accel":     func(k *Key) { k.Accel = "kvm" },
	}
	seen := map[string]string{base.ID(): "base"}
	for name, change := range changes {
		k := testKey()
		change(&k)
		if other, ok := seen[k.ID()]; ok {
			t.Errorf("changing %s gives the ID of %s", name, other)
		}
		seen[k.ID()] = name
	}
}

// save writes data as QEMU would and commits it.
func save(t *testing.T, c *Cache, k Key, data []byte) {
	t.Helper()
	s, err := c.Begin(k.ID())
	if err != nil || s == nil {
		t.Fatalf("Begin = %v, %v", s, err)
	}
	if err := os.WriteFile(s.Temp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Meta{Key: k, Ready: protocol.Ready{Agent: "dev", KernelRelease: "6.1.0"}, Saved: time.Now(), BootMS: 2500, SaveMS: 100}); err != nil {
		t.Fatal(err)
	}
}

func TestSaveFind(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := testKey()
	if s, err := c.Find(k.ID()); s != nil || err != nil {
		t.Fatalf("Find in an empty cache = %v, %v", s, err)
	}
	data := bytes.Repeat([]byte("QEVM"), 1000)
	save(t, c, k, data)

	s, err := c.Find(k.ID())
	if err != nil || s == nil {
		t.Fatalf("Find = %v, %v", s, err)
	}
	defer s.Release()
	if s.Ready.KernelRelease != "6.1.0" || s.BootMS != 2500 || s.Size != int64(len(data)) || s.Key.MemoryMiB != 512 {
		t.Errorf("meta = %+v", s.Meta)
	}
	if got, _ := os.ReadFile(s.State); !bytes.Equal(got, data) {
		t.Error("state file differs from what was written")
	}
	for _, p := range []string{s.State, c.path(k.ID(), metaExt)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", p, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(c.Dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode %v", fi.Mode())
	}
	// A valid snapshot needs no second save.
	if again, err := c.Begin(k.ID()); again != nil || err != nil {
		t.Errorf("Begin over a valid snapshot = %v, %v", again, err)
	}
	assertNoTemps(t, c)
}

// A damaged state file is deleted by Find, which says why; a state file
// only touched is still good.
func TestFindDamaged(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 4096)
	tests := []struct {
		name    string
		damage  func(path string) error
		damaged bool
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 100) }, true},
		{"flipped", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{9}, 5000)
			return err
		}, true},
		{"removed", os.Remove, true},
		{"touched", func(p string) error { return os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := Open(t.TempDir())
			k := testKey()
			save(t, c, k, data)
			if err := tt.damage(c.path(k.ID(), stateExt)); err != nil {
				t.Fatal(err)
			}
			s, err := c.Find(k.ID())
			if !tt.damaged {
				if err != nil || s == nil {
					t.Fatalf("Find = %v, %v", s, err)
				}
				s.Release()
				return
			}
			if s != nil || !errors.Is(err, ErrDamaged) {
				t.Fatalf("Find = %v, %v; want ErrDamaged", s, err)
			}
			for _, ext := range []string{stateExt, metaExt} {
				if _, err := os.Stat(c.path(k.ID(), ext)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there", ext)
				}
			}
			// The next run saves it again.
			save(t, c, k, data)
		})
	}
}

// A byte changed with the file's time put back passes Find's checks (size,
// time) and not Verify, which the VM runs while QEMU loads the state.
func TestVerifyPatchedTimeRestored(t *testing.T) {
	c, _ := Open(t.TempDir())
	k := testKey()
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 4096)
	save(t, c, k, data)
	state := c.path(k.ID(), stateExt)
	s, err := c.Find(k.ID())
	if err != nil || s == nil {
		t.Fatalf("Find = %v, %v", s, err)
	}
	if err := s.Verify(); err != nil {
		t.Errorf("Verify of the state as written: %v", err)
	}
	s.Release()
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(state, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(state, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	s, err = c.Find(k.ID())
	if err != nil || s == nil {
		t.Fatalf("Find = %v, %v: want the patched state found (its size and time are as written)", s, err)
	}
	defer s.Release()
	err = s.Verify()
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "is not what was written") {
		t.Errorf("Verify of the patched state: %v, want ErrDamaged", err)
	}
}

// Of several runs saving one key at once, one saves; the others are told
// there is nothing to do. A snapshot being saved is not found.
func TestBeginConcurrent(t *testing.T) {
	c, _ := Open(t.TempDir())
	k := testKey()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		begun []*Saving
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.Begin(k.ID())
			if err != nil {
				t.Error(err)
			}
			if s != nil {
				mu.Lock()
				begun = append(begun, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(begun) != 1 {
		t.Fatalf("%d runs began saving", len(begun))
	}
	if s, err := c.Find(k.ID()); s != nil || err != nil {
		t.Errorf("Find while saving = %v, %v", s, err)
	}
	os.WriteFile(begun[0].Temp, []byte("state"), 0o600)
	if err := begun[0].Commit(Meta{Key: k}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Find(k.ID())
	if s == nil || err != nil {
		t.Fatalf("Find after commit = %v, %v", s, err)
	}
	s.Release()
}

// A snapshot being restored is neither removed nor pruned under QEMU.
func TestRemoveWhileHeld(t *testing.T) {
	c, _ := Open(t.TempDir())
	k := testKey()
	save(t, c, k, []byte("state"))
	s, _ := c.Find(k.ID())
	if err := c.Remove(k.ID()); err != nil {
		t.Fatal(err)
	}
	removed, kept, _, err := c.Prune(nil, false)
	if err != nil || len(removed) != 0 || kept != 0 {
		t.Errorf("Prune while held = %v, %d, %v", removed, kept, err)
	}
	if _, err := os.Stat(s.State); err != nil {
		t.Fatalf("state removed while held: %v", err)
	}
	s.Release()
	if err := c.Remove(k.ID()); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Find(k.ID()); s != nil || err != nil {
		t.Errorf("Find after Remove = %v, %v", s, err)
	}
}

// A failed save leaves nothing: no snapshot, no temporary.
func TestAbortAndEmpty(t *testing.T) {
	c, _ := Open(t.TempDir())
	k := testKey()
	s, _ := c.Begin(k.ID())
	if err := s.Commit(Meta{Key: k}); err == nil {
		t.Error("committed an empty state")
	}
	s, _ = c.Begin(k.ID())
	s.Abort()
	if f, err := c.Find(k.ID()); f != nil || err != nil {
		t.Errorf("Find = %v, %v", f, err)
	}
	assertNoTemps(t, c)
}

// Prune removes what keep does not want and what a killed run left, and
// says how much.
func TestPrune(t *testing.T) {
	c, _ := Open(t.TempDir())
	a, b := testKey(), testKey()
	b.Kernel = "other"
	save(t, c, a, []byte("aaaa"))
	save(t, c, b, bytes.Repeat([]byte("b"), 1000))
	// A killed run's leftovers: a temporary, and a state without metadata.
	orphan := testKey()
	orphan.CPUs = 4
	os.WriteFile(c.path(orphan.ID(), stateExt), []byte("orphan"), 0o600)
	os.WriteFile(c.path(a.ID(), stateExt+".123"+tmpExt), []byte("half"), 0o600)
	// Records whose writer was killed before its rename, named by the
	// writer itself: one beside a's kept snapshot, one alone.
	lone := testKey()
	lone.CPUs = 8
	for _, id := range []string{a.ID(), lone.ID()} {
		killed, err := atomicfile.Create(c.path(id, metaExt), metaOptions)
		if err != nil {
			t.Fatal(err)
		}
		killed.WriteString(`{"format":`)
		killed.Close()
	}

	keep := func(m Meta) bool { return m.Key.Kernel == "k" }
	// b, the orphan, the lone record's temporary, and a's temporaries.
	removed, kept, keptBytes, err := c.Prune(keep, true)
	if err != nil || len(removed) != 4 || kept != 1 || keptBytes < 4 {
		t.Fatalf("dry run: %v, %d, %v", removed, kept, err)
	}
	if _, err := os.Stat(c.path(b.ID(), stateExt)); err != nil {
		t.Fatal("the dry run removed something")
	}
	removed, kept, keptBytes, err = c.Prune(keep, false)
	if err != nil || len(removed) != 4 || kept != 1 || keptBytes < 4 {
		t.Fatalf("prune: %v, %d, %d, %v", removed, kept, keptBytes, err)
	}
	var freed int64
	for _, r := range removed {
		freed += r.Size
	}
	if freed < 1000+6+4+2*10 {
		t.Errorf("freed %d bytes", freed)
	}
	if s, _ := c.Find(b.ID()); s != nil {
		t.Error("pruned snapshot still found")
	}
	if s, _ := c.Find(a.ID()); s == nil {
		t.Error("kept snapshot not found")
	} else {
		s.Release()
	}
	if removed, _, _, _ := c.Prune(nil, false); len(removed) != 1 {
		t.Errorf("prune all removed %v", removed)
	}
	assertNoTemps(t, c)
}

func assertNoTemps(t *testing.T, c *Cache) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(c.Dir, "*"+tmpExt)); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// Trim keeps the cache within a size, removing the snapshots used least
// recently first, never one in use.
func TestTrim(t *testing.T) {
	c, _ := Open(t.TempDir())
	var keys []Key
	for i := range 4 {
		k := testKey()
		k.CPUs = i + 1
		keys = append(keys, k)
		save(t, c, k, bytes.Repeat([]byte{byte(i)}, 1000))
		// Recorded as used a minute apart, oldest first.
		used := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(c.path(k.ID(), metaExt), used, used)
	}
	// Using the oldest makes it the newest; holding the second keeps it.
	s, _ := c.Find(keys[0].ID())
	s.Release()
	held, _ := c.Find(keys[1].ID())
	defer held.Release()
	removed, err := c.Trim(c.size(keys[0].ID()) + c.size(keys[1].ID()))
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, r := range removed {
		gone = append(gone, filepath.Base(r.Path))
	}
	if len(gone) != 2 || gone[0] != keys[2].ID() || gone[1] != keys[3].ID() {
		t.Errorf("trimmed %v, want the snapshots of keys 2 and 3", gone)
	}
	for _, k := range keys[:2] {
		if _, err := os.Stat(c.path(k.ID(), stateExt)); err != nil {
			t.Errorf("snapshot of %d CPUs removed: %v", k.CPUs, err)
		}
	}
}
