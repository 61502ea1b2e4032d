package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077) // the mode asked for wins over the umask
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name string
		o    Options
		mode fs.FileMode
		glob string // the temporary's pattern, relative to the directory
	}{
		{"defaults", Options{}, 0o600, ".out.json.*"},
		{"public, hidden temporary", Options{Mode: 0o644}, 0o644, ".out.json.*"},
		{"private, synced, .tmp", Options{Mode: 0o600, Sync: true, TempSuffix: ".tmp"}, 0o600, "out.json.*.tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.json")
			if got := TempGlob(path, tc.o); got != filepath.Join(dir, tc.glob) {
				t.Errorf("TempGlob %q, want %q", got, filepath.Join(dir, tc.glob))
			}
			for _, content := range []string{"first", "second, longer"} {
				if err := WriteFile(path, []byte(content), tc.o); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil || string(b) != content {
					t.Fatalf("read %q, %v; want %q", b, err, content)
				}
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != tc.mode {
				t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, tc.mode)
			}
			if left, _ := filepath.Glob(TempGlob(path, tc.o)); len(left) != 0 {
				t.Errorf("temporaries left: %v", left)
			}
		})
	}
}

// TestTemporaries: an unfinished write (a writer killed before Commit)
// leaves a file that TempGlob matches and the target does not change; an
// aborted or failed one leaves nothing.
func TestTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.json")
	o := Options{Sync: true, TempSuffix: ".tmp"}
	if err := WriteFile(path, []byte("old"), o); err != nil {
		t.Fatal(err)
	}
	killed, err := Create(path, o)
	if err != nil {
		t.Fatal(err)
	}
	killed.WriteString("half")
	if left, _ := filepath.Glob(TempGlob(path, o)); len(left) != 1 || left[0] != killed.Name() {
		t.Errorf("temporaries %v, want %s", left, killed.Name())
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("target %q during a write, want old", b)
	}
	killed.Abort()
	killed.Abort() // twice: nothing
	if err := killed.Commit(); err == nil {
		t.Error("commit after abort succeeded")
	}
	// A rename that fails (the target is a non-empty directory).
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "x"), 0o755)
	if err := WriteFile(blocked, []byte("x"), o); err == nil || !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.EISDIR) {
		t.Errorf("write over a directory: %v", err)
	}
	for _, p := range []string{path, blocked} {
		if left, _ := filepath.Glob(TempGlob(p, o)); len(left) != 0 {
			t.Errorf("temporaries left: %v", left)
		}
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir"), nil, o); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
