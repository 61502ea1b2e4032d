package initramfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

func TestWriteRun(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cpio")
	writeFile(t, base, []byte("pretend base archive\n"))
	prog := filepath.Join(dir, "prog")
	writeFile(t, prog, []byte("\x7fELF program"))
	data := filepath.Join(dir, "data.txt")
	writeFile(t, data, bytes.Repeat([]byte("d"), 100<<10))
	dst := filepath.Join(dir, "run.cpio")

	err := WriteRun(context.Background(), dst, base, []File{
		{Path: "/vmrunner/share/0", Source: prog, Mode: 0o755},
		{Path: "/vmrunner/share/1/testdata", Dir: true},
		{Path: "/vmrunner/share/1/testdata/empty", Dir: true},
		{Path: "/vmrunner/share/1/testdata/data.txt", Source: data},
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive %v, mode %v; want 0600", err, fi.Mode())
	}
	all, _ := os.ReadFile(dst)
	if !bytes.HasPrefix(all, []byte("pretend base archive\n")) {
		t.Fatal("run archive does not start with the base archive")
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(all[len("pretend base archive\n"):])))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	for _, r := range recs {
		got["/"+strings.TrimPrefix(r.Name, "/")] = r
	}
	for name, want := range map[string]struct {
		mode    uint64
		content []byte
	}{
		"/vmrunner/share/0":                   {cpio.S_IFREG | 0o755, []byte("\x7fELF program")},
		"/vmrunner/share/1/testdata/data.txt": {cpio.S_IFREG | 0o644, bytes.Repeat([]byte("d"), 100<<10)},
		"/vmrunner/share/1/testdata/empty":    {cpio.S_IFDIR | 0o755, nil},
		"/vmrunner/share/1":                   {cpio.S_IFDIR | 0o755, nil},
		"/vmrunner":                           {cpio.S_IFDIR | 0o755, nil},
	} {
		r, ok := got[name]
		if !ok {
			t.Errorf("%s missing from the run archive", name)
			continue
		}
		if r.Mode != want.mode {
			t.Errorf("%s: mode %o, want %o", name, r.Mode, want.mode)
		}
		if want.content != nil {
			b, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if !bytes.Equal(b, want.content) {
				t.Errorf("%s: %d bytes of content, want %d", name, len(b), len(want.content))
			}
		}
	}
}

func TestWriteRunRefuses(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cpio")
	writeFile(t, base, []byte("base"))
	file := filepath.Join(dir, "f")
	writeFile(t, file, []byte("x"))
	for name, f := range map[string]File{
		"relative":     {Path: "vmrunner/x", Source: file},
		"unclean":      {Path: "/a/../init", Source: file},
		"init":         {Path: "/init", Source: file},
		"root":         {Path: "/", Dir: true},
		"missing file": {Path: "/x", Source: filepath.Join(dir, "missing")},
		"a directory":  {Path: "/x", Source: dir},
	} {
		dst := filepath.Join(dir, "run.cpio")
		if err := WriteRun(context.Background(), dst, base, []File{f}); err == nil {
			t.Errorf("%s: WriteRun accepted %+v", name, f)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("%s: a partial archive was left behind", name)
		}
	}
}

// BenchmarkWriteRun packs a package directory of 5 MiB in 200 files behind a
// base archive of 8 MiB, as vmrunner exec does for each run.
func BenchmarkWriteRun(b *testing.B) {
	dir := b.TempDir()
	base := filepath.Join(dir, "base.cpio")
	if err := os.WriteFile(base, bytes.Repeat([]byte{0}, 8<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	var files []File
	for i := range 200 {
		p := filepath.Join(dir, "pkg", "f"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 25<<10+i), 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, File{Path: "/vmrunner/share/0/f" + strconv.Itoa(i), Source: p})
	}
	b.ResetTimer()
	for range b.N {
		if err := WriteRun(context.Background(), filepath.Join(dir, "run.cpio"), base, files); err != nil {
			b.Fatal(err)
		}
	}
}
