package vmrunner

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/kernels"
)

// AgentName is the file name of the guest agent built for arch.
func AgentName(a kernels.Arch) string { return "vmrunner-agent-" + string(a) }

// FindAgent locates the static guest agent for arch: in dir when given, else
// $VMRUNNER_AGENT_DIR, else beside the running vmrunner binary (where
// `make build` puts them).
func FindAgent(dir string, a kernels.Arch) (string, error) {
	if dir == "" {
		dir = os.Getenv("VMRUNNER_AGENT_DIR")
	}
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find guest agent: %w", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dir = filepath.Dir(exe)
	}
	p := filepath.Join(dir, AgentName(a))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("guest agent for %s not found at %s: run `make build` (it builds the agents beside bin/vmrunner) or set VMRUNNER_AGENT_DIR", a, p)
	}
	return p, nil
}
