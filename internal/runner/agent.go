package runner

import (
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/agentbuild"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// AgentName is the file name of the guest agent built for arch.
func AgentName(a kernels.Arch) string { return "vmrunner-agent-" + string(a) }

// FindAgent locates the static guest agent for arch: in dir when given, else
// $VMRUNNER_AGENT_DIR, else beside the running vmrunner binary (where
// `make build` puts them), else under cacheDir, built there on first use
// from this vmrunner's module version (internal/agentbuild: `go install`).
func FindAgent(ctx context.Context, dir, cacheDir string, a kernels.Arch) (string, error) {
	if dir == "" {
		dir = os.Getenv("VMRUNNER_AGENT_DIR")
	}
	beside := dir == ""
	if beside {
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
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if !beside {
		return "", fmt.Errorf("guest agent for %s not found at %s: run `make build` (it builds the agents beside bin/vmrunner) or set VMRUNNER_AGENT_DIR", a, p)
	}
	built, err := agentbuild.Ensure(ctx, cacheDir, string(a), os.Stderr)
	if err != nil {
		return "", fmt.Errorf("guest agent for %s not found at %s: %w", a, p, err)
	}
	return filepath.Join(built, AgentName(a)), nil
}

// workloadRunner returns the guest's workload runner (cmd/vmrunner-workload,
// built beside the agents) when a check of m runs in it
// (protocol.RunnerWorkload), or nil: every other VM boots a small agent.
func workloadRunner(m *matrix.Matrix, agent string, a kernels.Arch) (*initramfs.File, error) {
	need := false
	for _, c := range m.Checks {
		def, ok := protocol.LookupCheck(c.Name)
		need = need || ok && def.Runner == protocol.RunnerWorkload
	}
	if !need {
		return nil, nil
	}
	p := filepath.Join(filepath.Dir(agent), "vmrunner-workload-"+string(a))
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("workload runner for %s not found at %s: run `make build` (it builds it beside the agents)", a, p)
	}
	return &initramfs.File{Path: protocol.WorkloadRunnerPath, Source: p, Mode: 0o755}, nil
}
