package kernels

import (
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A kernel directory of the cache is sealed like the initramfs cache: when
// it is made, every file in it (kernel.json included) is recorded in
// seal.json with its size, modification time and SHA-256. Before each use
// the files are checked against it: size and modification time first, the
// full hash only for a file whose time changed (a copied cache). A file
// patched, truncated, deleted or added makes the directory damaged, and
// the kernel is extracted again from its download.

// sealName is the record of a kernel directory's files. It is written
// last, inside the temporary directory that is then renamed into place.
const sealName = "seal.json"

// sealVersion is the format of seal.json.
const sealVersion = 1

// ErrCacheDamaged is a cache entry whose files are not what was recorded
// when it was made: it is cached again. Errors that wrap it say which
// file and how.
var ErrCacheDamaged = errors.New("cache damaged")

type seal struct {
	Version int          `json:"version"`
	Files   []sealedFile `json:"files"`
}

type sealedFile struct {
	Path   string `json:"path"` // slash-separated, relative to the directory
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime_ns"`
	SHA256 string `json:"sha256"`
}

// writeSeal records every file under dir in dir/seal.json. Only regular
// files and directories may be there.
func writeSeal(dir string) error {
	var s seal
	s.Version = sealVersion
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir() || rel == sealName:
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file (%s)", rel, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum, err := fileutil.FileSHA256(p)
		if err != nil {
			return err
		}
		s.Files = append(s.Files, sealedFile{Path: filepath.ToSlash(rel), Size: info.Size(), MTime: info.ModTime().UnixNano(), SHA256: sum})
		return nil
	})
	if err != nil {
		return fmt.Errorf("seal %s: %w", dir, err)
	}
	return writeJSONAtomic(filepath.Join(dir, sealName), &s)
}

// checkSeal checks the files under dir against its seal. A file whose time
// changed but whose content did not is accepted, and the seal is rewritten
// with the new time so that the next check is cheap again. Errors wrap
// ErrCacheDamaged, or fs.ErrNotExist when there is no directory.
func checkSeal(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	var s seal
	if err := readJSON(filepath.Join(dir, sealName), &s); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s has no %s (made by an older vmrunner)", ErrCacheDamaged, dir, sealName)
		}
		return fmt.Errorf("%w: %v", ErrCacheDamaged, err)
	}
	if s.Version != sealVersion || len(s.Files) == 0 {
		return fmt.Errorf("%w: %s: %s of version %d with %d files", ErrCacheDamaged, dir, sealName, s.Version, len(s.Files))
	}
	want := make(map[string]*sealedFile, len(s.Files))
	for i := range s.Files {
		want[s.Files[i].Path] = &s.Files[i]
	}
	var problems []string
	retimed := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == sealName || strings.HasPrefix(d.Name(), ".tmp-"+sealName) { // a rewrite cut short
			return nil
		}
		f, ok := want[rel]
		if !ok {
			problems = append(problems, rel+" was added")
			return nil
		}
		delete(want, rel)
		if !d.Type().IsRegular() {
			problems = append(problems, rel+" is no longer a regular file")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() != f.Size {
			problems = append(problems, fmt.Sprintf("%s has %d bytes, %d when extracted", rel, info.Size(), f.Size))
			return nil
		}
		if info.ModTime().UnixNano() == f.MTime {
			return nil
		}
		sum, err := fileutil.FileSHA256(p)
		if err != nil {
			return err
		}
		if sum != f.SHA256 {
			problems = append(problems, rel+" was modified")
			return nil
		}
		f.MTime, retimed = info.ModTime().UnixNano(), true
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: check %s: %v", ErrCacheDamaged, dir, err)
	}
	for rel := range want {
		problems = append(problems, rel+" is missing")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		if len(problems) > 3 {
			problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
		}
		return fmt.Errorf("%w: %s: %s", ErrCacheDamaged, dir, strings.Join(problems, ", "))
	}
	if retimed {
		_ = writeJSONAtomic(filepath.Join(dir, sealName), &s) // best effort: the check stays correct without it
	}
	return nil
}
