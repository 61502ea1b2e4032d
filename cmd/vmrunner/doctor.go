package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/internal/doctor"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
)

func newDoctorCmd() *cobra.Command {
	var cacheDir, agentDir string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Say what this machine can run and what to fix (exit 3 when something blocks)",
		Long: `doctor checks QEMU per guest arch (and that it is new enough: 5.2 for
x86_64, 7.1 for arm64), KVM, nested virtualisation (on an x86_64 machine that
is itself a VM), the cache directory's free space and owner, the Debian archive keyring, the Go toolchain (which builds the guest
agents of a go-installed vmrunner on first use) and whether snapshots can be
saved, and prints one line each with the command that fixes it.
Exit status: 0 nothing blocks, 3 something does.
$VMRUNNER_KVM_DEVICE names another KVM device than /dev/kvm, $VMRUNNER_CPUINFO
another file than /proc/cpuinfo.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := doctorOptions(cacheDir, agentDir)
			if err != nil {
				return err
			}
			fs := doctor.Check(cmd.Context(), o)
			for _, f := range fs {
				fmt.Fprintln(cmd.OutOrStdout(), f.Line())
			}
			if _, blocked := doctor.FirstBlock(fs); blocked {
				return &exitError{code: results.ExitInfra}
			}
			return nil
		},
	}
	flagCacheDir(cmd.Flags(), &cacheDir)
	flagAgentDir(cmd.Flags(), &agentDir)
	return cmd
}

// doctorOptions fills what doctor checks from the flags run and doctor
// share.
func doctorOptions(cacheDir, agentDir string) (doctor.Options, error) {
	if cacheDir == "" {
		d, err := kernels.DefaultCacheDir()
		if err != nil {
			return doctor.Options{}, err
		}
		cacheDir = d
	}
	return doctor.Options{CacheDir: cacheDir, AgentsReady: agentsBeside(agentDir)}, nil
}

// agentsBeside reports whether the x86_64 agent is where FindAgent looks
// before it builds: --agent-dir, $VMRUNNER_AGENT_DIR, beside this binary.
func agentsBeside(dir string) bool {
	if dir == "" {
		dir = os.Getenv("VMRUNNER_AGENT_DIR")
	}
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return false
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dir = filepath.Dir(exe)
	}
	_, err := os.Stat(filepath.Join(dir, "vmrunner-agent-x86_64"))
	return err == nil
}

// warnBlocked prints the first problem doctor finds that blocks m's VMs, in
// one line, before a run starts (the cheap checks only: no process runs).
func warnBlocked(cmd *cobra.Command, m *matrix.Matrix, cacheDir, agentDir string) {
	o, err := doctorOptions(cacheDir, agentDir)
	if err != nil {
		return
	}
	o.Quick, o.Keyring = true, "-"
	for _, t := range m.Targets() {
		if !slices.Contains(o.Arches, string(t.Arch)) {
			o.Arches = append(o.Arches, string(t.Arch))
		}
	}
	if f, blocked := doctor.FirstBlock(doctor.Check(cmd.Context(), o)); blocked {
		fmt.Fprintf(cmd.ErrOrStderr(), "vmrunner doctor: %s\n", f.Short())
	}
}
