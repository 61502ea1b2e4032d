package qemu

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPruneSocketDirs: a socket directory a killed vmrunner left goes; one
// whose sockets a live process holds, one too young, one that is not
// vmrunner's stay.
func TestPruneSocketDirs(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name string, sockets ...string) (string, []*net.UnixListener) {
		t.Helper()
		dir := filepath.Join(tmp, name)
		os.Mkdir(dir, 0o700)
		var ls []*net.UnixListener
		for _, s := range sockets {
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, s), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetUnlinkOnClose(false) // what a SIGKILL leaves: the file
			ls = append(ls, l)
		}
		return dir, ls
	}
	dead, ls := mk("vmr1001", "qmp", "ctl", "con")
	for _, l := range ls {
		l.Close()
	}
	live, ls := mk("vmr1002", "qmp", "ctl")
	ls[1].Close() // one socket still bound: in use
	defer ls[0].Close()
	young, ls := mk("vmr1003", "qmp")
	ls[0].Close()
	empty, _ := mk("vmr1004")
	foreign, ls := mk("vmr1005", "qmp")
	ls[0].Close()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("someone else's"), 0o644)
	other, _ := mk("vmrunner-boot-1")
	for _, d := range []string{dead, live, empty, foreign, other} {
		os.Chtimes(d, old, old)
	}

	dry, err := pruneSocketDirs(tmp, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pruneSocketDirs(tmp, time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Path)
	}
	slices.Sort(got)
	if want := []string{dead, empty}; !slices.Equal(got, want) || len(dry) != len(want) {
		t.Errorf("removed %v (dry run %d), want %v", got, len(dry), want)
	}
	for _, d := range []string{live, young, foreign, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed", d)
		}
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("%s still there", dead)
	}
}
