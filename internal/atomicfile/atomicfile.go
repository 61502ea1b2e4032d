package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how a file is written.
type Options struct {
	// Mode is the file's permission bits; 0 means 0600.
	Mode fs.FileMode
	// Sync makes the file durable: fsync before the rename, and of the
	// directory after it.
	Sync bool
	// TempSuffix, when set, names the temporary file
	// "<base>.<random><TempSuffix>" (".tmp", say, for a cache whose prune
	// removes "<name>.*.tmp"); empty, it is the hidden ".<base>.<random>".
	TempSuffix string
}

// pattern is the os.CreateTemp pattern of base's temporary file.
func (o Options) pattern(base string) string {
	if o.TempSuffix == "" {
		return "." + base + ".*"
	}
	return base + ".*" + o.TempSuffix
}

// TempGlob returns the filepath.Match pattern of the temporary files a
// writer of path with options o creates (and a killed one leaves).
func TempGlob(path string, o Options) string {
	return filepath.Join(filepath.Dir(path), o.pattern(filepath.Base(path)))
}

// File is a file being written in place of Path: write to it, then Commit
// or Abort.
type File struct {
	*os.File
	Path string
	o    Options
	done bool
}

// Create starts writing path: it creates the temporary file in path's
// directory.
func Create(path string, o Options) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), o.pattern(filepath.Base(path)))
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: f, Path: path, o: o}, nil
}

// Commit gives the temporary file its mode (and syncs it, with Sync),
// then renames it over Path. On error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.Path)
	}
	f.done = true
	mode := f.o.Mode
	if mode == 0 {
		mode = 0o600
	}
	err := f.Chmod(mode)
	if err == nil && f.o.Sync {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), f.Path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if f.o.Sync {
		if err := syncDir(filepath.Dir(f.Path)); err != nil {
			return fmt.Errorf("write %s: sync directory: %w", f.Path, err)
		}
	}
	return nil
}

// Abort removes the temporary file; after Commit it does nothing.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// WriteFile writes data as path's new content.
func WriteFile(path string, data []byte, o Options) error {
	f, err := Create(path, o)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
