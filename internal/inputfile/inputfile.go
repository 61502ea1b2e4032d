// Package inputfile reads files the user names (a kernel image, a config, a
// BPF object, a Beyla binary) safely: only regular files, opened without
// blocking (a FIFO with no writer would block open forever), bounded in
// size, and read under a context so that Ctrl-C stops a long read.
package inputfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Errors, for errors.Is. Both are the user's to fix.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("too large")
)

// Open opens path for reading if it is a regular file of at most limit
// bytes, and returns it with its size. A device, FIFO, socket or directory
// is an error wrapping ErrNotRegular that names what it is; a larger file
// one wrapping ErrTooLarge.
func Open(path string, limit int64) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %s, %w", path, describeMode(fi.Mode()), ErrNotRegular)
	}
	if fi.Size() > limit {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %s, %w: the limit is %s", path, Size(fi.Size()), ErrTooLarge, Size(limit))
	}
	return f, fi.Size(), nil
}

// Check is Open without keeping the file open: what a caller checks before
// it starts any work.
func Check(path string, limit int64) (int64, error) {
	f, size, err := Open(path, limit)
	if err != nil {
		return 0, err
	}
	f.Close()
	return size, nil
}

// ReadFile reads a whole regular file of at most limit bytes.
func ReadFile(ctx context.Context, path string, limit int64) ([]byte, error) {
	f, size, err := Open(path, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := &limitedBuffer{b: make([]byte, 0, min(size, 64<<20)), limit: limit}
	if _, err := io.Copy(w, Reader(ctx, f)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return w.b, nil
}

// SHA256 returns the hex SHA-256 of a regular file of at most limit bytes.
func SHA256(ctx context.Context, path string, limit int64) (string, error) {
	f, _, err := Open(path, limit)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(Reader(ctx, f), limit+1)); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Copy copies a regular file of at most limit bytes to dst (created with
// mode perm, replaced if it exists).
func Copy(ctx context.Context, src, dst string, limit int64, perm fs.FileMode) error {
	in, _, err := Open(src, limit)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.LimitReader(Reader(ctx, in), limit+1))
	if err = errors.Join(err, out.Close()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// Reader returns r that fails with ctx's error once ctx is done.
func Reader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// limitedBuffer collects at most limit bytes: a file that grew after Open
// is an error, not an unbounded read.
type limitedBuffer struct {
	b     []byte
	limit int64
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if int64(len(l.b)+len(p)) > l.limit {
		return 0, fmt.Errorf("%w: grew past %s while being read", ErrTooLarge, Size(l.limit))
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

// describeMode names what a non-regular file is.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file (" + m.Type().String() + ")"
}

// Size prints a byte count for people: 512 MiB, 2.0 GiB, 300 KiB.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
