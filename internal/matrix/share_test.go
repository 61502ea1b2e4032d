package matrix

import (
	"errors"
	"github.com/vmrunner/vmrunner/internal/testsupport/testfs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/protocol"
)

func TestSharesAddDir(t *testing.T) {
	root := t.TempDir()
	testfs.WriteTree(t, root, map[string]string{
		"a_test.go":             "package a",
		"testdata/in.txt":       "input",
		"testdata/deep/x.json":  "{}",
		".git/objects/big":      strings.Repeat("g", 1000),
		"testdata/.hidden/file": "skipped with its directory",
		".golden":               "a dot file is kept",
	})
	if err := os.Symlink("in.txt", filepath.Join(root, "testdata", "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(root, "testdata", "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	sh := &Shares{}
	if err := sh.AddDir(root, "/work/pkg", DefaultMaxDirBytes); err != nil {
		t.Fatal(err)
	}
	if len(sh.Binds) != 1 || sh.Binds[0] != (protocol.Bind{Source: protocol.ShareRoot + "/0", Target: "/work/pkg"}) {
		t.Fatalf("binds %+v", sh.Binds)
	}
	got := map[string]string{}
	for _, f := range sh.Files {
		rel := strings.TrimPrefix(f.Path, protocol.ShareRoot+"/0")
		if f.Dir {
			got[rel+"/"] = ""
			continue
		}
		got[rel] = filepath.Base(f.Source)
	}
	for _, want := range []string{"/a_test.go", "/testdata/in.txt", "/testdata/deep/x.json", "/.golden", "/testdata/link.txt", "/testdata/deep/"} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s not packed (packed: %v)", want, got)
		}
	}
	for p := range got {
		if strings.Contains(p, ".git") || strings.Contains(p, ".hidden") || strings.Contains(p, "/up") || strings.Contains(p, "dangling") {
			t.Errorf("%s packed", p)
		}
	}
	if want := int64(len("package a") + len("input") + len("{}") + len("a dot file is kept") + len("input")); sh.Bytes != want {
		t.Errorf("bytes %d, want %d", sh.Bytes, want)
	}
}

func TestSharesAddDirTooLarge(t *testing.T) {
	root := t.TempDir()
	testfs.WriteTree(t, root, map[string]string{
		"testdata/huge.bin": strings.Repeat("x", 3<<20),
		"small.txt":         "s",
	})
	sh := &Shares{}
	err := sh.AddDir(root, "/work/pkg", 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{root, "3.0 MiB in 2 files", "more than 1.0 MiB", "testdata/huge.bin 3.0 MiB", "--max-dir-size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(sh.Files) != 0 {
		t.Errorf("%d files kept from a refused directory", len(sh.Files))
	}
}

func TestSharesRefuseReservedAndDuplicates(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	testfs.WriteTree(t, filepath.Dir(f), map[string]string{"f": "x"})
	sh := &Shares{}
	for _, guest := range []string{"/proc/x", "/init", "/vmrunner/share/9", "/", "rel"} {
		if err := sh.AddFile(f, guest, false); err == nil {
			t.Errorf("AddFile at %s accepted", guest)
		}
	}
	if err := sh.AddFile(f, "/tmp/f", false); err != nil {
		t.Fatal(err)
	}
	if err := sh.AddFile(f, "/tmp/f", false); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a second file at /tmp/f: %v", err)
	}
	if !slices.ContainsFunc(sh.Files, func(x initramfs.File) bool { return x.Path == protocol.ShareRoot+"/0" && x.Mode == 0o644 }) {
		t.Errorf("files %+v", sh.Files)
	}
}

// A program inside the directory it runs in is packed once.
func TestSharesProgramInsideDir(t *testing.T) {
	root := t.TempDir()
	testfs.WriteTree(t, root, map[string]string{"bin/prog": strings.Repeat("p", 1000), "testdata/x": "x"})
	sh := &Shares{}
	if err := sh.AddFile(filepath.Join(root, "bin/prog"), filepath.Join(root, "bin/prog"), true); err != nil {
		t.Fatal(err)
	}
	if err := sh.AddDir(root, root, DefaultMaxDirBytes); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range sh.Files {
		if f.Source == filepath.Join(root, "bin/prog") {
			n++
		}
	}
	if n != 1 || sh.Bytes != 1001 {
		t.Errorf("program packed %d times, %d bytes in all; want once, 1001", n, sh.Bytes)
	}
}
