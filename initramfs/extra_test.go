package initramfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
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

func TestBuildExtraErrors(t *testing.T) {
	opts, _ := testOptions(t)
	for _, f := range []File{
		{Path: "relative/x.o", Source: "/dev/null"},
		{Path: "/a/../init", Source: "/dev/null"},
		{Path: "/init", Source: "/dev/null"},
		{Path: "/vmrunner/objects/x.o", Source: filepath.Join(t.TempDir(), "missing.o")},
	} {
		opts.Extra = []File{f}
		if _, err := Build(context.Background(), opts); err == nil {
			t.Errorf("Build with extra %+v: no error", f)
		}
	}
}
