package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// portPoll is how often waitPort looks for the port.
const portPoll = 20 * time.Millisecond

// findPort returns the device name (vport0p1...) of the virtio-serial port
// called name, from the sysfs tree at sysfs, or "" if it is not there yet.
func findPort(sysfs, name string) (string, error) {
	names, err := filepath.Glob(filepath.Join(sysfs, "class", "virtio-ports", "*", "name"))
	if err != nil {
		return "", err
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			continue // the port is still being set up
		}
		if strings.TrimSpace(string(b)) == name {
			return filepath.Base(filepath.Dir(n)), nil
		}
	}
	return "", nil
}

// waitPort polls until the port called name shows up and its device node
// opens, for up to timeout: the port appears asynchronously once
// virtio_console has probed.
func waitPort(ctx context.Context, sysfs, dev, name string, timeout time.Duration) (*os.File, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(portPoll)
	defer tick.Stop()
	var last error
	for {
		vport, err := findPort(sysfs, name)
		switch {
		case err != nil:
			last = err
		case vport == "":
			last = errors.New("no such port")
		default:
			f, err := os.OpenFile(filepath.Join(dev, vport), os.O_RDWR, 0)
			if err == nil {
				return f, nil
			}
			last = err // devtmpfs may lag behind sysfs
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("find port %s: %w after %s (%v; %s)", name, ctx.Err(), timeout, last, busInventory(sysfs))
		}
	}
}

// busInventory lists the virtio and platform devices the kernel found, so
// that a missing port can be told apart from a missing transport.
func busInventory(sysfs string) string {
	var parts []string
	for _, bus := range []string{"virtio", "platform"} {
		entries, _ := os.ReadDir(filepath.Join(sysfs, "bus", bus, "devices"))
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		parts = append(parts, fmt.Sprintf("%s devices: [%s]", bus, strings.Join(names, " ")))
	}
	return strings.Join(parts, "; ")
}
