package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/testsupport/testfs"
	"github.com/vmrunner/vmrunner/protocol"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// A program's shares travel with the plan at the paths the archive would
// have put them, with their size, SHA-256 and mode; what the protocol
// cannot carry sends them back to the archive.
func TestShareFiles(t *testing.T) {
	root := t.TempDir()
	testfs.WriteTree(t, root, map[string]string{"pkg/testdata/in.txt": "input", "prog": "\x7fELF program"})
	if err := os.Chmod(filepath.Join(root, "prog"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "pkg", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh := &matrix.Shares{}
	if err := sh.AddFile(filepath.Join(root, "prog"), "/work/prog", true); err != nil {
		t.Fatal(err)
	}
	if err := sh.AddDir(filepath.Join(root, "pkg"), "/work/pkg", matrix.DefaultMaxDirBytes); err != nil {
		t.Fatal(err)
	}
	m := &matrix.Matrix{}
	files, dirs, err := ShareFiles(m, "x86_64", sh.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]protocol.FileSpec{}
	for _, f := range files {
		got[f.Spec.Path] = f.Spec
	}
	prog, in := got[protocol.ShareRoot+"/0"], got[protocol.ShareRoot+"/1/testdata/in.txt"]
	if prog.Mode != protocol.FileModeExec || prog.Size != int64(len("\x7fELF program")) || prog.SHA256 != sha256Hex("\x7fELF program") {
		t.Errorf("program sent as %+v", prog)
	}
	if in.Mode != protocol.FileMode || in.SHA256 != sha256Hex("input") {
		t.Errorf("data file sent as %+v", in)
	}
	if !slices.Contains(dirs, protocol.ShareRoot+"/1/empty") || !slices.Contains(dirs, protocol.ShareRoot+"/1") {
		t.Errorf("dirs %v: want the share's root and its empty directory", dirs)
	}

	// A name with a control character is the archive's to carry.
	testfs.WriteTree(t, root, map[string]string{"pkg/bad\x01name": "x"})
	sh = &matrix.Shares{}
	if err := sh.AddDir(filepath.Join(root, "pkg"), "/work/pkg", matrix.DefaultMaxDirBytes); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ShareFiles(m, "x86_64", sh.Files, nil); err == nil {
		t.Error("a file name with a control character went over the channel")
	}
	// So is a directory of more files than a plan carries.
	many := make([]initramfs.File, protocol.MaxFiles+1)
	for i := range many {
		many[i] = initramfs.File{Path: protocol.ShareRoot + "/0/d" + strconv.Itoa(i), Dir: true}
	}
	if _, _, err := ShareFiles(m, "x86_64", many, nil); err == nil {
		t.Error("more files than a plan carries went over the channel")
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
