package initramfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

func TestBuildExtra(t *testing.T) {
	opts, _ := testOptions(t)
	base, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(t.TempDir(), "probes.o")
	writeFile(t, obj, []byte("\x7fELF pretend object"))
	opts.Extra = []File{{Path: "/vmrunner/objects/probes.o", Source: obj}}

	got, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got == base {
		t.Fatal("extra files went into the base archive")
	}
	baseData, _ := os.ReadFile(base)
	all, _ := os.ReadFile(got)
	if !bytes.HasPrefix(all, baseData) {
		t.Fatal("combined archive does not start with the base archive")
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(all[len(baseData):])))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var content []byte
	for _, r := range recs {
		names = append(names, r.Name)
		if r.Name == "vmrunner/objects/probes.o" || r.Name == "/vmrunner/objects/probes.o" {
			content, _ = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		}
	}
	if string(content) != "\x7fELF pretend object" {
		t.Fatalf("appended archive has %q; object content %q", names, content)
	}

	again, err := Build(context.Background(), opts)
	if err != nil || again != got {
		t.Fatalf("second build: %s, %v; want the cached %s", again, err, got)
	}
	writeFile(t, obj, []byte("\x7fELF another object"))
	changed, err := Build(context.Background(), opts)
	if err != nil || changed == got {
		t.Fatalf("changed object: %s, %v; want a new archive", changed, err)
	}
}

// TestBuildExtraSamePath: two files for one guest path give one record,
// the later file's (repro --shell's object over the matrix's).
func TestBuildExtraSamePath(t *testing.T) {
	opts, _ := testOptions(t)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a", "probes.o"), filepath.Join(dir, "b", "probes.o")
	writeFile(t, first, []byte("\x7fELF the matrix's"))
	writeFile(t, second, []byte("\x7fELF the command line's"))
	opts.Extra = []File{{Path: "/vmrunner/objects/probes.o", Source: first}, {Path: "/vmrunner/objects/probes.o", Source: second}}
	base, err := Build(context.Background(), Options{Kernel: opts.Kernel, Agent: opts.Agent, CacheDir: opts.CacheDir})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	baseData, _ := os.ReadFile(base)
	all, _ := os.ReadFile(got)
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(all[len(baseData):])))
	if err != nil {
		t.Fatal(err)
	}
	var contents []string
	for _, r := range recs {
		if strings.HasSuffix(r.Name, "probes.o") {
			data, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			contents = append(contents, string(data))
		}
	}
	if len(contents) != 1 || contents[0] != "\x7fELF the command line's" {
		t.Errorf("records for probes.o: %q, want the later file's only", contents)
	}
}

func TestBuildExtraErrors(t *testing.T) {
	opts, _ := testOptions(t)
	dir := t.TempDir()
	obj := filepath.Join(dir, "x.o")
	writeFile(t, obj, []byte("\x7fELF"))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.o")
	sparse(t, huge, MaxFileSize+1)
	half := filepath.Join(dir, "half.o")
	sparse(t, half, MaxFileSize)
	for _, tc := range []struct {
		files []File
		msg   string
	}{
		{[]File{{Path: "relative/x.o", Source: obj}}, "expected a clean absolute path"},
		{[]File{{Path: "/a/../init", Source: obj}}, "expected a clean absolute path"},
		{[]File{{Path: "/init", Source: obj}}, "other than /init"},
		{[]File{{Path: "/vmrunner/objects/x.o", Source: filepath.Join(dir, "missing.o")}}, "no such file"},
		{[]File{{Path: "/vmrunner/objects/x.o", Source: "/dev/zero"}}, "/dev/zero is a character device, not a regular file"},
		{[]File{{Path: "/vmrunner/objects/x.o", Source: fifo}}, "is a FIFO, not a regular file"},
		{[]File{{Path: "/vmrunner/objects/x.o", Source: huge}}, "is 512.0 MiB, too large: the limit is 512 MiB"},
		{[]File{{Path: "/vmrunner/objects/a.o", Source: half}, {Path: "/vmrunner/objects/b.o", Source: half}, {Path: "/vmrunner/objects/c.o", Source: obj}},
			"add up to 1.0 GiB, more than the 1.0 GiB an archive may hold"},
	} {
		opts.Extra = tc.files
		_, err := Build(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Build with extra %+v: %v, want %q", tc.files, err, tc.msg)
		}
	}
	// Nothing was written for them: no archive holds part of a huge file.
	entries, _ := os.ReadDir(filepath.Join(opts.CacheDir, "initramfs"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "x-") {
			t.Errorf("%s written for a refused file", e.Name())
		}
	}
}

// sparse makes a file of size bytes that takes no disk space.
func sparse(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestArchivesPrivate: archives hold the user's files, so only the user
// reads them; an archive or directory an older vmrunner made readable by
// others is made private on its next use.
func TestArchivesPrivate(t *testing.T) {
	opts, _ := testOptions(t)
	obj := filepath.Join(t.TempDir(), "secret.o")
	writeFile(t, obj, []byte("\x7fELF secret"))
	opts.Extra = []File{{Path: "/vmrunner/objects/secret.o", Source: obj}}
	archive, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(archive)
	check := func() {
		t.Helper()
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want mode 0700", dir, fi.Mode(), err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".lock") {
				continue // empty
			}
			fi, _ := e.Info()
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
			}
		}
	}
	check()
	os.Chmod(dir, 0o755)
	os.Chmod(archive, 0o644)
	if again, err := Build(context.Background(), opts); err != nil || again != archive {
		t.Fatalf("rebuild: %s, %v", again, err)
	}
	check()
}
