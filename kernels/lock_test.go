package kernels_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/internal/kerneltest"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	want := kerneltest.Debian(t, kernels.X86_64)
	srv := kerneltest.NewMainline(t)
	srv.Publish(t, "v6.12", want)
	c := testCache(t)
	specs := map[string]kernels.Spec{
		"mainline": {Mainline: &kernels.MainlineSpec{Version: "v6.12", URL: srv.Root()}},
		"debian":   {Debian: &kernels.DebianSpec{Suite: kerneltest.Suite}},
	}
	m, err := kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	deb := *want
	deb.Name = "debian"
	lock := kernels.NewLock("hash", specs, []*kernels.Kernel{m, &deb})
	path := filepath.Join(t.TempDir(), "matrix.lock")
	if err := lock.Write(path); err != nil {
		t.Fatal(err)
	}
	lock, err = kernels.ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}

	// The Debian pin resolves to exactly the pinned .deb (from the blob
	// cache of the user, which holds it).
	pin := lock.Pin("debian", kernels.X86_64, specs["debian"])
	if pin == nil || len(pin.Files) != 1 || pin.Files[0].SHA256 != want.SHA256 {
		t.Fatalf("debian pin = %+v, want the .deb %s", pin, want.SHA256)
	}
	k, err := kernels.Resolve(ctx, "debian", specs["debian"], kernels.X86_64, kernels.Options{Pin: pin, Logger: quiet()})
	if err != nil || k.SHA256 != want.SHA256 || k.Origin.Package != want.Origin.Package {
		t.Fatalf("pinned debian = %+v, %v", k, err)
	}

	// A changed source has no pin.
	if p := lock.Pin("debian", kernels.X86_64, kernels.Spec{Debian: &kernels.DebianSpec{Suite: "bookworm"}}); p != nil {
		t.Errorf("pin for a changed source: %+v", p)
	}

	// The mainline pin downloads by URL and verifies the SHA-256 even when
	// the server now publishes something else under the same name.
	pin = lock.Pin("mainline", kernels.X86_64, specs["mainline"])
	if pin == nil || len(pin.Files) != 2 {
		t.Fatalf("mainline pin = %+v", pin)
	}
	other := kerneltest.Debian(t, kernels.ARM64) // different bytes, same file names
	srv.Publish(t, "v6.12", &kernels.Kernel{Arch: kernels.X86_64, Release: want.Release, Image: other.Image, Config: other.Config, Modules: other.Modules})
	_, err = kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: testCache(t), Pin: pin, Logger: quiet()})
	if !errors.Is(err, kernels.ErrChecksum) {
		t.Fatalf("pinned mainline after the server changed: %v, want a checksum mismatch", err)
	}
	k, err = kernels.Resolve(ctx, "mainline", specs["mainline"], kernels.X86_64, kernels.Options{Cache: c, Pin: pin, Logger: quiet()})
	if err != nil || k.SHA256 != m.SHA256 {
		t.Fatalf("pinned mainline from the cache = %v, %v; want %s", k, err, m.SHA256)
	}
}
