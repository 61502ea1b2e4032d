package initramfs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"
)

// WriteRun writes to dst the archive at base followed by a second archive
// holding files: what one run needs and no later run will (a test binary,
// a package directory), so it is never cached. Linux unpacks the two in
// order. File contents are streamed from disk, one file at a time; a file
// whose size changed since it was listed is an error, not a short archive.
// dst is created with mode 0600.
func WriteRun(ctx context.Context, dst, base string, files []File) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write run archive: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write run archive: %w", cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	in, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("write run archive: %w", err)
	}
	defer in.Close()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("write run archive: copy %s: %w", filepath.Base(base), err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	a := &archiveWriter{w: cpio.Newc.Writer(bw), dirs: map[string]bool{}}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		clean := path.Clean("/" + f.Path)
		if !path.IsAbs(f.Path) || clean != f.Path || clean == "/" || clean == InitPath {
			return fmt.Errorf("write run archive: path %q: expected a clean absolute path other than / and %s", f.Path, InitPath)
		}
		if f.Dir {
			a.dir(f.Path)
			continue
		}
		if err := a.addFile(f); err != nil {
			return fmt.Errorf("write run archive: %w", err)
		}
	}
	if a.err != nil {
		return fmt.Errorf("write run archive: %w", a.err)
	}
	if err := cpio.WriteTrailer(a.w); err != nil {
		return fmt.Errorf("write run archive: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write run archive: %w", err)
	}
	return nil
}

// addFile streams one host file into the archive.
func (a *archiveWriter) addFile(f File) error {
	src, err := os.Open(f.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Source)
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	size := fi.Size()
	a.add(cpio.Record{
		ReaderAt: &exactReader{r: src, size: size, name: f.Source},
		Info:     cpio.Info{Name: f.Path, Mode: cpio.S_IFREG | uint64(mode), FileSize: uint64(size)},
	})
	return a.err
}

// exactReader reads a file that must still have the size it had when listed.
type exactReader struct {
	r    io.ReaderAt
	size int64
	name string
}

func (e *exactReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.r.ReadAt(p, off)
	if err == io.EOF && off+int64(n) < e.size {
		return n, fmt.Errorf("%s shrank while being packed", e.name)
	}
	return n, err
}
