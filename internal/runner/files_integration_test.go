package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/vm"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// TestAgentRefusesChangedFile: a real agent in a real VM (Debian 6.1
// x86_64 under QEMU) refuses a plan's file whose bytes are not those the
// plan's SHA-256 names (a test binary rebuilt while it was being sent),
// says why, and runs no check; the same VM shape with the right bytes
// runs its check.
func TestAgentRefusesChangedFile(t *testing.T) {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: run `make install-deps` (or set VMRUNNER_SKIP_INTEGRATION=1)")
	}
	ctx := context.Background()
	k := kerneltest.Debian(t, kernels.X86_64)
	agent := filepath.Join(t.TempDir(), "vmrunner-agent-x86_64")
	build := exec.Command("go", "build", "-trimpath", "-o", agent, "../../cmd/vmrunner-agent")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the agent: %v\n%s", err, out)
	}
	cache, err := kernels.OpenCache("")
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := initramfs.Build(ctx, initramfs.Options{Kernel: k, Agent: agent, Modules: initramfs.DefaultModules, CacheDir: cache.Dir})
	if err != nil {
		t.Fatal(err)
	}
	accel, err := qemu.ResolveAccel(qemu.AccelAuto, kernels.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	run := func(sent, claimed []byte) vm.Outcome {
		sum := sha256.Sum256(claimed)
		file := vm.PlanFile{Host: "test binary", Data: sent, Spec: protocol.FileSpec{
			Path: protocol.ShareRoot + "/0", Size: int64(len(claimed)), SHA256: hex.EncodeToString(sum[:]), Mode: protocol.FileModeExec}}
		return vm.Run(ctx, vm.Spec{
			Target: matrix.Target{Kernel: matrix.KernelEntry{Name: "6.1"}, Arch: kernels.X86_64}, Kernel: k, Initramfs: initrd,
			Plan:  protocol.Plan{Checks: []protocol.CheckSpec{{Name: "btf", Params: []byte(`{}`), Timeout: protocol.Duration(time.Minute)}}},
			Accel: accel, Profile: qemu.ProfileFast, MemoryMiB: 512, CPUs: 1, Dir: t.TempDir(),
			BootTimeout: BootTimeout(accel), Timeout: 3 * time.Minute, Log: discardLogger(), Files: []vm.PlanFile{file},
		})
	}
	good := []byte("the test binary as it was hashed")
	bad := bytes.ToUpper(good) // as long, other bytes

	out := run(bad, good)
	if len(out.Results) != 0 || out.Done {
		t.Errorf("the agent ran checks with a file that does not match its SHA-256: %+v", out.Results)
	}
	if out.FailKind != results.KindAgent || out.Err == nil || !strings.Contains(out.Err.Error(), "sha256") {
		t.Errorf("outcome %q: %v; want the VM to fail naming the file's sha256", out.FailKind, out.Err)
	}
	t.Logf("refused: %s: %v", out.FailKind, out.Err)
	if out.Prepared != nil {
		t.Errorf("the agent said prepared: %+v", *out.Prepared)
	}

	out = run(good, good)
	if out.FailKind != "" || len(out.Results) != 1 || out.Results[0].Status != protocol.StatusPass {
		t.Errorf("with the right bytes: %q %v, results %+v", out.FailKind, out.Err, out.Results)
	}
	if p := out.Prepared; p == nil || p.Files != 1 || p.FileBytes != int64(len(good)) {
		t.Errorf("prepared %+v, want 1 file of %d bytes", p, len(good))
	}
}
