package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/internal/fileutil"
)

// TestCacheBinary: a QEMU binary is identified once and the record reused
// by later runs while the file is the same; a binary replaced or rewritten,
// even with its size and modification time put back, is identified anew.
func TestCacheBinary(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	script := func(version string) string { return "#!/bin/sh\necho 'QEMU emulator version " + version + "'\n" }
	if err := os.WriteFile(bin, []byte(script("7.2.1")), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, version, err := c.Binary(bin)
	want, _ := fileutil.FileSHA256(bin)
	if err != nil || sum != want || version != "QEMU emulator version 7.2.1" {
		t.Fatalf("Binary = %q, %q, %v; want %s and its version line", sum, version, err, want)
	}
	records, _ := filepath.Glob(filepath.Join(c.Dir, "qemu-*.id"))
	if len(records) != 1 {
		t.Fatalf("records: %v", records)
	}
	// The record is what later runs use: a different version in it (which
	// only the record can give) comes back.
	b, _ := os.ReadFile(records[0])
	if err := os.WriteFile(records[0], []byte(strings.Replace(string(b), "7.2.1", "7.2.1-recorded", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, version, _ := c.Binary(bin); version != "QEMU emulator version 7.2.1-recorded" {
		t.Fatalf("unchanged binary: version %q, want the recorded one", version)
	}

	// Rewritten in place with the same size, its time put back: the change
	// time moved.
	fi, _ := os.Stat(bin)
	time.Sleep(20 * time.Millisecond) // past the file system's clock tick
	if err := os.WriteFile(bin, []byte(script("7.2.2")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	sum, version, err = c.Binary(bin)
	want, _ = fileutil.FileSHA256(bin)
	if err != nil || sum != want || version != "QEMU emulator version 7.2.2" {
		t.Fatalf("rewritten binary: %q, %q, %v; want %s, version 7.2.2", sum, version, err, want)
	}
	// Replaced (a package upgrade renames a new file into place).
	next := bin + ".new"
	if err := os.WriteFile(next, []byte(script("7.2.3")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	if _, version, _ := c.Binary(bin); version != "QEMU emulator version 7.2.3" {
		t.Fatalf("replaced binary: version %q, want 7.2.3", version)
	}
	// Prune and Trim leave the record alone: it is no snapshot.
	if _, _, _, err := c.Prune(nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Trim(0); err != nil {
		t.Fatal(err)
	}
	if records, _ = filepath.Glob(filepath.Join(c.Dir, "qemu-*.id")); len(records) != 1 {
		t.Errorf("after Prune and Trim: records %v", records)
	}
}
