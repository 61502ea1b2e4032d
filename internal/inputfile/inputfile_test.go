package inputfile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{
		{"/dev/zero", "is a character device"},
		{fifo, "is a FIFO"}, // no writer: a blocking open would never return
		{dir, "is a directory"},
	} {
		_, _, err := Open(tc.path, 1<<30)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.path+" "+tc.what+", not a regular file") {
			t.Errorf("Open(%s) = %v, want %q", tc.path, err, tc.what)
		}
		if _, err := SHA256(context.Background(), tc.path, 1<<30); !errors.Is(err, ErrNotRegular) {
			t.Errorf("SHA256(%s) = %v", tc.path, err)
		}
		if _, err := ReadFile(context.Background(), tc.path, 1<<30); !errors.Is(err, ErrNotRegular) {
			t.Errorf("ReadFile(%s) = %v", tc.path, err)
		}
	}
	// A symlink to a regular file is that file.
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	os.Symlink(filepath.Join(dir, "f"), filepath.Join(dir, "link"))
	if data, err := ReadFile(context.Background(), filepath.Join(dir, "link"), 10); err != nil || string(data) != "data" {
		t.Errorf("ReadFile(link) = %q, %v", data, err)
	}
}

func TestBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, _ := os.Create(big)
	f.Truncate(3 << 30) // sparse: nothing is written
	f.Close()
	_, _, err := Open(big, 2<<30)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "is 3.0 GiB, too large: the limit is 2.0 GiB") {
		t.Errorf("Open(3 GiB) = %v", err)
	}
	small := filepath.Join(dir, "small")
	os.WriteFile(small, bytes.Repeat([]byte("x"), 100), 0o644)
	if _, err := ReadFile(context.Background(), small, 99); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over the limit = %v", err)
	}
	if sum, err := SHA256(context.Background(), small, 100); err != nil || len(sum) != 64 {
		t.Errorf("SHA256 at the limit = %q, %v", sum, err)
	}
	dst := filepath.Join(dir, "copy")
	if err := Copy(context.Background(), small, dst, 100, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Size() != 100 || fi.Mode().Perm() != 0o600 {
		t.Errorf("copy: %v, %v", fi, err)
	}
}

// TestCancelledRead: a read stops at the next chunk once its context ends.
func TestCancelledRead(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	f, _ := os.Create(big)
	f.Truncate(1 << 30)
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SHA256(ctx, big, 2<<30); !errors.Is(err, context.Canceled) {
		t.Errorf("SHA256 with a cancelled context = %v", err)
	}
	if _, err := ReadFile(ctx, big, 2<<30); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadFile with a cancelled context = %v", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{100: "100 bytes", 4 << 10: "4 KiB", 512 << 20: "512 MiB", 3 << 19: "1.5 MiB", 5 << 29: "2.5 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
