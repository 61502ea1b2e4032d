package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/vmrunner/vmrunner/internal/inputfile"
)

// File is a host file added to an initramfs at Path (absolute, in the
// guest), for example a BPF object for the verifier check.
type File struct {
	Path   string      // in the guest: /vmrunner/objects/probes.o
	Source string      // on the host
	Mode   os.FileMode // permission bits; 0 means 0644
	// Dir makes Path an empty directory (Source unused); only WriteRun
	// takes directories.
	Dir bool
}

// Bounds of the extra files. The guest unpacks the archive into its memory
// (and holds both until the unpacking ends), so anything near these sizes
// needs a VM with several times as much memory anyway.
const (
	MaxFileSize  = 512 << 20 // one extra file
	MaxExtraSize = 1 << 30   // all extra files of an archive
)

// ErrBadFile is an extra file that cannot go into an archive: missing, not
// a regular file, or over MaxFileSize or MaxExtraSize. It is the user's to
// fix.
var ErrBadFile = errors.New("bad file for the guest")

// CheckFiles checks that files can go into an archive, reading none of
// them: each must be a regular file within MaxFileSize, all together
// within MaxExtraSize. It returns their total size.
func CheckFiles(files []File) (int64, error) {
	var total int64
	for _, f := range files {
		size, err := inputfile.Check(f.Source, MaxFileSize)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrBadFile, err)
		}
		total += size
	}
	if total > MaxExtraSize {
		return 0, fmt.Errorf("%w: the files for the guest add up to %s, more than the %s an archive may hold", ErrBadFile,
			inputfile.Size(total), inputfile.Size(MaxExtraSize))
	}
	return total, nil
}

// withExtra returns the archive for opts: the base archive (cached, built
// without opts.Extra) followed by a small archive of the extra files. Linux
// unpacks concatenated newc archives in order, so the base archive is
// reused as it is. The combined archive is cached too, keyed by the base
// archive's name and the extra files' paths, modes and contents. Files are
// streamed, never held in memory whole, and must not change while the
// archive is written.
func withExtra(ctx context.Context, opts Options) (string, error) {
	extra := lastPerPath(opts.Extra)
	opts.Extra = nil
	if _, err := CheckFiles(extra); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	base, err := Build(ctx, opts)
	if err != nil {
		return "", err
	}
	files, key, err := openExtra(ctx, base, extra)
	defer func() {
		for _, f := range files {
			f.f.Close()
		}
	}()
	if err != nil {
		return "", err
	}
	archive := filepath.Join(filepath.Dir(base), "x-"+key+".cpio")
	if intact(archive) {
		return archive, nil
	}

	lock := flock.New(archive + ".lock")
	locked, err := lock.TryLockContext(ctx, lockRetry)
	if err != nil || !locked {
		return "", fmt.Errorf("build initramfs: lock %s: %w", lock.Path(), errorsOr(err, ctx.Err()))
	}
	defer func() { _ = lock.Unlock() }()
	if intact(archive) {
		return archive, nil
	}

	tmp, err := os.CreateTemp(filepath.Dir(archive), filepath.Base(archive)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := writeExtra(ctx, tmp, base, files); err != nil {
		return "", fmt.Errorf("build initramfs: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), archive); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	if err := seal(archive); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	return archive, nil
}

// lastPerPath drops the files whose guest path a later file has: the later
// one wins (repro --shell's object over a matrix object of the same name).
func lastPerPath(files []File) []File {
	last := map[string]int{}
	for i, f := range files {
		last[f.Path] = i
	}
	var out []File
	for i, f := range files {
		if last[f.Path] == i {
			out = append(out, f)
		}
	}
	return out
}

// extraFile is an extra file opened and hashed, its Mode set.
type extraFile struct {
	File
	f    *os.File
	size int64
	sum  []byte
}

// openExtra opens and hashes the extra files that go after the archive
// base, and returns them (to be closed, also on an error) with the key of
// the combined archive: base's name and the files' paths, modes and
// contents.
func openExtra(ctx context.Context, base string, extra []File) ([]extraFile, string, error) {
	files := make([]extraFile, 0, len(extra))
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.LittleEndian, uint64(len(b))) // a hash never fails to write
		h.Write(b)
	}
	field([]byte(filepath.Base(base)))
	var total int64
	for _, f := range extra {
		clean := path.Clean("/" + f.Path)
		if !path.IsAbs(f.Path) || clean != f.Path || clean == "/" || strings.HasPrefix(clean, "/init") {
			return files, "", fmt.Errorf("build initramfs: extra file path %q: expected a clean absolute path other than /init", f.Path)
		}
		in, size, err := inputfile.Open(f.Source, MaxFileSize)
		if err != nil {
			return files, "", fmt.Errorf("build initramfs: %w: %v", ErrBadFile, err)
		}
		files = append(files, extraFile{File: f, f: in, size: size})
		if total += size; total > MaxExtraSize {
			return files, "", fmt.Errorf("build initramfs: %w: the files for the guest add up to more than %s", ErrBadFile, inputfile.Size(MaxExtraSize))
		}
		fh := sha256.New()
		if n, err := io.Copy(fh, io.LimitReader(inputfile.Reader(ctx, in), MaxFileSize+1)); err != nil {
			return files, "", fmt.Errorf("build initramfs: read %s: %w", f.Source, err)
		} else if n != size {
			return files, "", fmt.Errorf("build initramfs: %s changed while it was read (%d bytes, then %d)", f.Source, size, n)
		}
		ef := &files[len(files)-1]
		ef.sum = fh.Sum(nil)
		if f.Mode == 0 {
			ef.Mode = 0o644
		}
		field([]byte(f.Path))
		_ = binary.Write(h, binary.LittleEndian, uint32(ef.Mode.Perm()))
		_ = binary.Write(h, binary.LittleEndian, uint64(size))
		field(ef.sum)
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// writeExtra writes to tmp the archive base followed by an archive of
// files, checking that none changed since it was hashed, and syncs it.
func writeExtra(ctx context.Context, tmp *os.File, base string, files []extraFile) error {
	defer tmp.Close()
	in, err := os.Open(base)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := io.Copy(tmp, inputfile.Reader(ctx, in)); err != nil {
		return err
	}
	bw := bufio.NewWriter(tmp)
	a := &archiveWriter{w: cpio.Newc.Writer(bw), dirs: map[string]bool{}}
	for _, f := range files {
		src := &verifyingReaderAt{ctx: ctx, r: f.f, h: sha256.New(), inOrder: true}
		a.add(cpio.Record{ReaderAt: src, Info: cpio.Info{Name: f.Path, Mode: cpio.S_IFREG | uint64(f.Mode.Perm()), FileSize: uint64(f.size)}})
		if a.err == nil && (src.off != f.size || !src.inOrder || !bytes.Equal(src.h.Sum(nil), f.sum)) {
			return fmt.Errorf("%s changed while the initramfs was being written", f.Source)
		}
	}
	if a.err != nil {
		return a.err
	}
	if err := cpio.WriteTrailer(a.w); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(archiveMode); err != nil {
		return err
	}
	return tmp.Sync()
}

// verifyingReaderAt hashes what the cpio writer reads, which it does in
// order, so that a file changed since it was hashed is caught.
type verifyingReaderAt struct {
	ctx     context.Context
	r       io.ReaderAt
	h       hash.Hash
	off     int64 // what was hashed so far
	inOrder bool  // every read started where the previous one ended
}

func (v *verifyingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := v.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := v.r.ReadAt(p, off)
	if off != v.off {
		v.inOrder = false
		return n, err
	}
	v.h.Write(p[:n])
	v.off += int64(n)
	return n, err
}

func errorsOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}
