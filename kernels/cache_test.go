package kernels

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestCacheLock(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(context.Background(), "initramfs/6.1 x86_64")
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files, so a second Lock in the same
	// process waits like another process would.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(ctx, "initramfs/6.1 x86_64"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock: err = %v, want DeadlineExceeded", err)
	}
	other, err := c.Lock(context.Background(), "initramfs/6.1 arm64")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	other()

	got := make(chan error)
	go func() {
		u, err := c.Lock(context.Background(), "initramfs/6.1 x86_64")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after unlock")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("VMRUNNER_CACHE", "/tmp/x")
	if d, err := DefaultCacheDir(); err != nil || d != "/tmp/x" {
		t.Errorf("with VMRUNNER_CACHE: %q, %v", d, err)
	}
	t.Setenv("VMRUNNER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	if d, err := DefaultCacheDir(); err != nil || d != filepath.Join("/tmp/xdg", "vmrunner") {
		t.Errorf("without: %q, %v", d, err)
	}
}
