package guest

import (
	"path/filepath"
	"testing"
)

func TestShellRequested(t *testing.T) {
	dir := t.TempDir()
	for cmdline, want := range map[string]bool{
		"panic=-1 rdinit=/init console=ttyS0 vmrunner.shell\n": true,
		"vmrunner.shell":                      true,
		"panic=-1 vmrunner.shell=0":           false,
		"panic=-1 xvmrunner.shell":            false,
		"panic=-1 rdinit=/init console=ttyS0": false,
	} {
		path := filepath.Join(dir, "cmdline")
		writeTestFile(t, path, cmdline)
		if got := shellRequested(path); got != want {
			t.Errorf("shellRequested(%q) = %v, want %v", cmdline, got, want)
		}
	}
	if shellRequested(filepath.Join(dir, "missing")) {
		t.Error("missing cmdline: shell requested")
	}
}
