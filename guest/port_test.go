package guest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addPort(t *testing.T, sysfs, vport, name string) {
	t.Helper()
	dir := filepath.Join(sysfs, "class", "virtio-ports", vport)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "name"), []byte(name+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
}

func TestFindPort(t *testing.T) {
	sysfs := t.TempDir()
	if p, err := findPort(sysfs, "vmrunner.0"); p != "" || err != nil {
		t.Fatalf("empty sysfs: %q, %v", p, err)
	}
	addPort(t, sysfs, "vport0p0", "org.qemu.guest_agent.0")
	addPort(t, sysfs, "vport0p1", "vmrunner.0")
	if p, err := findPort(sysfs, "vmrunner.0"); p != "vport0p1" || err != nil {
		t.Fatalf("findPort = %q, %v", p, err)
	}
}

func TestWaitPort(t *testing.T) {
	sysfs, dev := t.TempDir(), t.TempDir()

	_, err := waitPort(context.Background(), sysfs, dev, "vmrunner.0", 60*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no such port") {
		t.Fatalf("no port: %v", err)
	}

	// The port and its device node show up late, as after a module load.
	go func() {
		time.Sleep(50 * time.Millisecond)
		addPort(t, sysfs, "vport1p1", "vmrunner.0")
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(filepath.Join(dev, "vport1p1"), nil, 0o600)
	}()
	f, err := waitPort(context.Background(), sysfs, dev, "vmrunner.0", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.Name() != filepath.Join(dev, "vport1p1") {
		t.Errorf("opened %s", f.Name())
	}
}
