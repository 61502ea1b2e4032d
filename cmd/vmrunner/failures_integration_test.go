package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGuestFailures makes real guests fail in each way a kernel matrix can
// (the selftest check does it from inside the VM) and checks the status,
// error kind, message and exit code vmrunner reports, and that the other
// check of the VM is still accounted for.
func TestGuestFailures(t *testing.T) {
	integration(t)
	tests := []struct {
		name     string
		arches   string
		defaults string
		check    string
		kind     string
		message  string
		console  string // must appear in console.log
		btf      string // status of the btf check that follows
	}{
		{"panic x86_64 (pvpanic)", "x86_64", "", "{action: panic}", "panic", "sysrq triggered crash", "Kernel panic", "error"},
		{"panic arm64 (console)", "arm64", "", "{action: panic}", "panic", "sysrq triggered crash", "Kernel panic", "error"},
		{"agent exits", "x86_64", "", "{action: exit-agent}", "agent", "guest agent (PID 1) exited", "Attempted to kill init", "error"},
		{"oversized message", "x86_64", "", "{action: flood-channel}", "protocol", "exceeds size limit", "", "error"},
		{"garbage on the channel", "x86_64", "", "{action: garbage}", "protocol", "malformed message", "", "error"},
		{"hung check, agent watchdog", "x86_64", "", "{action: hang, timeout: 3s}", "check", "timed out after 3s", "", "pass"},
		{"hung VM, host watchdog", "arm64", "defaults: {timeout: 15s}", "{action: hang, timeout: 10m}", "timeout", "did not finish within 15s", "sysrq: Show State", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := writeFile(t, "matrix.yaml", fmt.Sprintf(`%s
kernels:
  - name: "6.1"
    arch: %s
    source: {debian: {suite: bookworm}}
checks:
  - selftest: %s
  - btf
`, tt.defaults, tt.arches, tt.check))
			out := t.TempDir()
			res := vmrunnerCLI(t, "run", m, "--out", out)
			if res.code != 3 {
				t.Errorf("exit code %d, want 3", res.code)
			}
			r, dir := readResults(t, out)
			if len(r.Results) != 2 {
				t.Fatalf("%d results, want 2: %+v", len(r.Results), r.Results)
			}
			st, btf := r.Results[0], r.Results[1]
			if st.Status != "error" || st.ErrorKind != tt.kind || !strings.Contains(st.Message, tt.message) {
				t.Errorf("selftest = %s/%s %q, want error/%s containing %q", st.Status, st.ErrorKind, st.Message, tt.kind, tt.message)
			}
			if btf.Status != tt.btf {
				t.Errorf("btf after the failure = %s (%s), want %s", btf.Status, btf.Message, tt.btf)
			}
			if tt.console != "" {
				b, err := os.ReadFile(filepath.Join(dir, st.Console))
				if err != nil || !bytes.Contains(b, []byte(tt.console)) {
					t.Errorf("console.log does not contain %q (%v)", tt.console, err)
				}
			}
		})
	}
}

// TestQEMUKilledFromOutside kills the VM's QEMU while a check runs: the VM is
// reported as a QEMU failure, vmrunner does not hang, and no QEMU is left.
func TestQEMUKilledFromOutside(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `
kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks:
  - selftest: {action: hang, timeout: 10m}
`)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "run", m, "--out", out)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var qemus []int
	for deadline := time.Now().Add(2 * time.Minute); len(qemus) == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		qemus = childrenNamed(cmd.Process.Pid, "qemu-system")
	}
	if len(qemus) == 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("no QEMU started; stderr:\n%s", se.String())
	}
	time.Sleep(3 * time.Second) // let the guest reach the hanging check
	if err := syscall.Kill(qemus[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("vmrunner hung after QEMU was killed")
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit code %d, want 3; stderr:\n%s", code, se.String())
	}
	r, _ := readResults(t, out)
	if len(r.Results) != 1 || r.Results[0].ErrorKind != "qemu" || !strings.Contains(r.Results[0].Message, "killed from outside") {
		t.Errorf("results: %+v", r.Results)
	}
}

// TestCorruptInputs: a kernel that is not whole and an initramfs whose init
// cannot run are each named, and never pass.
func TestCorruptInputs(t *testing.T) {
	integration(t)
	t.Run("init the kernel cannot execute", func(t *testing.T) {
		// An "x86_64 agent" that is really the arm64 one: the kernel unpacks
		// the initramfs but cannot execute /init.
		agents := t.TempDir()
		arm, err := os.ReadFile(filepath.Join(binDir, "vmrunner-agent-arm64"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(agents, "vmrunner-agent-x86_64"), arm, 0o755); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--kernel", "6.1", "--arch", "x86_64", "--check", "btf",
			"--agent-dir", agents, "--retries", "0", "--out", out)
		if res.code != 3 {
			t.Errorf("exit code %d, want 3", res.code)
		}
		r, _ := readResults(t, out)
		if len(r.Results) != 1 || r.Results[0].ErrorKind != "initramfs" || !strings.Contains(r.Results[0].Message, "No working init found") {
			t.Errorf("results: %+v", r.Results)
		}
	})
	t.Run("truncated kernel image", func(t *testing.T) {
		// Half of the real vmlinux the 6.1 VM boots, taken from its QEMU command line.
		out := t.TempDir()
		if res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--kernel", "6.1", "--arch", "x86_64", "--check", "btf", "--out", out); res.code != 0 {
			t.Fatalf("warm-up run: exit %d", res.code)
		}
		_, runDir := readResults(t, out)
		cmdline, err := os.ReadFile(filepath.Join(runDir, "6.1-x86_64", "qemu.cmdline"))
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(cmdline))
		image := ""
		for i, f := range fields {
			if f == "-kernel" && i+1 < len(fields) {
				image = fields[i+1]
			}
		}
		b, err := os.ReadFile(image)
		if err != nil {
			t.Fatalf("read kernel %q: %v", image, err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "vmlinux"), b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		m := filepath.Join(dir, "matrix.yaml")
		if err := os.WriteFile(m, []byte("kernels:\n  - name: half\n    arch: x86_64\n    source: {file: {kernel: vmlinux}}\nchecks: [btf]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := vmrunnerCLI(t, "run", m, "--out", t.TempDir())
		if res.code != 2 || !strings.Contains(res.stderr, "not a kernel image") {
			t.Errorf("exit %d, want 2 with \"not a kernel image\" in stderr", res.code)
		}
	})
}

// TestConcurrentRunsShareCache starts two runs at once on an empty cache:
// both pass, the kernel is downloaded and extracted once, and no temporary
// file is left in the cache.
func TestConcurrentRunsShareCache(t *testing.T) {
	integration(t)
	cache := t.TempDir()
	m := writeFile(t, "matrix.yaml", `
kernels:
  - name: "5.10"
    arch: arm64
    source: {debian: {suite: bullseye}}
checks: [btf]
`)
	type result struct {
		code   int
		stderr string
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "run", m, "--out", t.TempDir())
			cmd.Env = append(os.Environ(), "VMRUNNER_CACHE="+cache)
			var se bytes.Buffer
			cmd.Stderr = &se
			err := cmd.Run()
			code := 0
			if err != nil {
				code = -1
				if cmd.ProcessState != nil {
					code = cmd.ProcessState.ExitCode()
				}
			}
			results <- result{code, se.String()}
		}()
	}
	for i := 0; i < 2; i++ {
		r := <-results
		if r.code != 0 {
			t.Errorf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	kernelDirs, _ := filepath.Glob(filepath.Join(cache, "kernels", "*", "kernel.json"))
	if len(kernelDirs) != 1 {
		t.Errorf("%d extracted kernels in the cache, want 1: %v", len(kernelDirs), kernelDirs)
	}
	_ = filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".tmp") || strings.Contains(filepath.Base(p), ".tmp-") || strings.HasPrefix(filepath.Base(p), "tmp-")) {
			t.Errorf("temporary file left in the cache: %s", p)
		}
		return nil
	})
}

// TestBootTimeoutRetried: a VM that shows no sign of its agent in time is
// booted again (--retries), every attempt's console is kept, and the record
// says how many boots it took. A boot timeout far below a real boot makes
// every attempt fail for real.
func TestBootTimeoutRetried(t *testing.T) {
	integration(t)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--kernel", "6.1", "--arch", "arm64", "--check", "btf",
		"--boot-timeout", "300ms", "--retries", "2", "--out", out)
	if res.code != 3 {
		t.Errorf("exit code %d, want 3", res.code)
	}
	r, dir := readResults(t, out)
	if len(r.Results) != 1 {
		t.Fatalf("results: %+v", r.Results)
	}
	rec := r.Results[0]
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	_ = json.Unmarshal(b, &raw)
	attempts := raw["results"].([]any)[0].(map[string]any)["attempts"]
	if rec.ErrorKind != "boot-timeout" || attempts != float64(3) {
		t.Errorf("record: kind %q, attempts %v; want boot-timeout after 3 attempts", rec.ErrorKind, attempts)
	}
	for _, name := range []string{"console.attempt1.log", "console.attempt2.log", "console.log"} {
		if _, err := os.Stat(filepath.Join(dir, "6.1-arm64", name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}
