package guest

import (
	"testing"

	"github.com/vmrunner/vmrunner/initramfs"
)

// The agent reads what the initramfs package writes.
func TestLayoutAgrees(t *testing.T) {
	if got := defaultBTFEnv().Configs[0]; got != initramfs.ConfigPath(releaseForTest()) {
		t.Errorf("agent reads config from %s", got)
	}
}

func releaseForTest() string {
	r, _ := uname()
	return r
}
