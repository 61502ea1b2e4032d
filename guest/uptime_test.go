package guest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUptime(t *testing.T) {
	p := filepath.Join(t.TempDir(), "uptime")
	os.WriteFile(p, []byte("2.47 1.03\n"), 0o444)
	if ms, err := uptimeMS(p); err != nil || ms != 2470 {
		t.Fatalf("uptimeMS = %d, %v", ms, err)
	}
	os.WriteFile(p, []byte("soon\n"), 0o444)
	if _, err := uptimeMS(p); err == nil {
		t.Fatal("garbage accepted")
	}
}
