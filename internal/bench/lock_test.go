package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestBenchHonoursLock: bench boots the kernel the lock pinned, not the
// one the source resolves to now; without the lock it boots the new one.
// (The runner's TestShellHonoursLock does the same for repro --shell.)
func TestBenchHonoursLock(t *testing.T) {
	m, cacheDir, dirA, dirB := kerneltest.PinnedMatrix(t)
	qemuArgs := kerneltest.FakeQEMU(t)
	agents := t.TempDir()
	os.WriteFile(filepath.Join(agents, runner.AgentName(kernels.X86_64)), []byte("agent"), 0o755)
	tools := runner.ShellToolsDir(agents, string(kernels.X86_64))
	os.MkdirAll(tools, 0o755)
	for _, tool := range runner.ShellTools {
		os.WriteFile(filepath.Join(tools, tool), []byte(tool), 0o755)
	}
	opts := runner.Options{Matrix: m, CacheDir: cacheDir, AgentDir: agents, Accel: qemu.AccelTCG, Refresh: true, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()

	var out bytes.Buffer
	if err := Run(ctx, Options{Options: opts, Boots: 1, Out: &out}); err == nil {
		t.Fatalf("bench with a QEMU that exits 1: no error; printed %s", out.String())
	}
	// The first whole-matrix run, which stops it: its VM did not run.
	if ks := kerneltest.BootedKernels(t, qemuArgs); len(ks) != 1 || !kerneltest.AllUnder(ks, dirA) {
		t.Fatalf("bench booted %v, want once the pinned kernel in %s", ks, dirA)
	}

	// Without the lock, the same command boots what the source gives now.
	if err := os.Remove(kernels.LockPath(m.Path)); err != nil {
		t.Fatal(err)
	}
	os.Remove(qemuArgs)
	_ = Run(ctx, Options{Options: opts, Boots: 1, Out: &out})
	if ks := kerneltest.BootedKernels(t, qemuArgs); len(ks) != 1 || !kerneltest.AllUnder(ks, dirB) {
		t.Fatalf("without the lock: booted %v, want the republished kernel in %s", ks, dirB)
	}
}
