package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestGuestFailures makes real guests fail in each way a kernel matrix can
// (the selftest check does it from inside the VM) and checks the status,
// error kind, message and exit code vmrunner reports, that the other check
// of the VM is still accounted for, and that a VM that died has a record of
// its own.
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
		vm       string // error kind of the VM's own record; "" for none
	}{
		{"panic x86_64 (pvpanic)", "x86_64", "", "{action: panic}", "panic", "sysrq triggered crash", "Kernel panic", "error", "panic"},
		{"panic arm64 (console)", "arm64", "", "{action: panic}", "panic", "sysrq triggered crash", "Kernel panic", "error", "panic"},
		{"agent exits", "x86_64", "", "{action: exit-agent}", "agent", "guest agent (PID 1) exited", "Attempted to kill init", "error", "agent"},
		{"oversized message", "x86_64", "", "{action: flood-channel}", "protocol", "exceeds size limit", "", "error", "protocol"},
		{"garbage on the channel", "x86_64", "", "{action: garbage}", "protocol", "malformed message", "", "error", "protocol"},
		{"hung check, agent watchdog", "x86_64", "", "{action: hang, timeout: 3s}", "check", "timed out after 3s", "", "pass", ""},
		{"hung VM, host watchdog", "arm64", "defaults: {timeout: 15s}", "{action: hang, timeout: 10m}", "timeout", "did not finish within 15s", "sysrq: Show State", "error", "timeout"},
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
			want := 2
			if tt.vm != "" {
				want = 3
			}
			if len(r.Results) != want {
				t.Fatalf("%d results, want %d: %+v", len(r.Results), want, r.Results)
			}
			st, btf := r.Results[0], r.Results[1]
			if st.Status != "error" || st.ErrorKind != tt.kind || !strings.Contains(st.Message, tt.message) {
				t.Errorf("selftest = %s/%s %q, want error/%s containing %q", st.Status, st.ErrorKind, st.Message, tt.kind, tt.message)
			}
			if btf.Status != tt.btf {
				t.Errorf("btf after the failure = %s (%s), want %s", btf.Status, btf.Message, tt.btf)
			}
			if tt.vm != "" {
				if vm := r.Results[2]; vm.Check != "vm" || vm.Status != "error" || vm.ErrorKind != tt.vm {
					t.Errorf("VM record = %s %s/%s %q, want vm error/%s", vm.Check, vm.Status, vm.ErrorKind, vm.Message, tt.vm)
				}
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

// hungAfter is how long a vmrunner that should be ending may take before
// the test calls it hung: generous, it only tells a hang from a slow machine.
const hungAfter = 3 * time.Minute

// liveCLI is a vmrunner run under way, its plain progress lines (CI=1)
// watched as they come, so that a test acts on what vmrunner reports (a
// VM booting, a check started) rather than after a sleep.
type liveCLI struct {
	out  string // its --out, when a test watches the run directory
	cmd  *exec.Cmd
	mu   sync.Mutex
	err  strings.Builder
	line chan string   // each stderr line
	done chan struct{} // closed when stderr ends
}

func startCLI(t *testing.T, env []string, args ...string) *liveCLI {
	t.Helper()
	l := &liveCLI{cmd: exec.Command(filepath.Join(binDir, "vmrunner"), args...), line: make(chan string, 1024), done: make(chan struct{})}
	l.cmd.Env = append(append(os.Environ(), "CI=1"), env...)
	pipe, err := l.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			l.mu.Lock()
			l.err.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
			select {
			case l.line <- sc.Text():
			default: // nobody waits for this one
			}
		}
	}()
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Kill()
			_ = l.cmd.Wait()
		}
	})
	return l
}

func (l *liveCLI) stderr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err.String()
}

// waitLine waits for a progress line containing s.
func (l *liveCLI) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(hungAfter)
	for {
		select {
		case line := <-l.line:
			if strings.Contains(line, s) {
				return
			}
		case <-l.done:
			t.Fatalf("vmrunner ended without printing %q; stderr:\n%s", s, l.stderr())
		case <-deadline:
			t.Fatalf("no %q from vmrunner within %s; stderr:\n%s", s, hungAfter, l.stderr())
		}
	}
}

// qemu returns the pid of the VM's QEMU, waiting for it to start.
func (l *liveCLI) qemu(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(hungAfter); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pids := childrenNamed(l.cmd.Process.Pid, "qemu-system"); len(pids) > 0 {
			return pids[0]
		}
	}
	t.Fatalf("no QEMU started; stderr:\n%s", l.stderr())
	return 0
}

// wait returns vmrunner's exit code; a vmrunner still running after
// hungAfter fails the test as hung.
func (l *liveCLI) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() {
		<-l.done
		exited <- l.cmd.Wait()
	}()
	select {
	case <-exited:
	case <-time.After(hungAfter):
		_ = l.cmd.Process.Kill()
		t.Fatalf("vmrunner hung; stderr:\n%s", l.stderr())
	}
	return l.cmd.ProcessState.ExitCode()
}

// TestQEMUKilledFromOutside kills the VM's QEMU at each phase of its life:
// before it answered QMP, while the guest boots, while a check runs. Each
// time the VM is reported as a QEMU failure, vmrunner exits 3 without
// hanging (--retries 0: nothing is booted again), and no QEMU is left.
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
	// Before QMP: a "QEMU" that is killed as soon as it starts. vmrunner
	// cannot tell it from the real one dying there, which is the point.
	wrapper := t.TempDir()
	if err := os.WriteFile(filepath.Join(wrapper, "qemu-system-x86_64"), []byte("#!/bin/sh\nkill -KILL $$\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     []string
		kill    func(t *testing.T, l *liveCLI) int // returns the QEMU it killed; nil: the wrapper dies by itself
		message string
	}{
		{"before QMP", []string{"PATH=" + wrapper + ":" + os.Getenv("PATH")}, nil, "QEMU exited before it answered QMP (signal: killed)"},
		// Once the kernel prints on the console, before the agent's first
		// check.
		{"during boot", nil, func(t *testing.T, l *liveCLI) int {
			l.waitLine(t, "boot")
			waitConsole(t, l.out, "Linux version")
			return killQEMU(t, l)
		}, "QEMU was killed from outside (killed)"},
		{"during a check", nil, func(t *testing.T, l *liveCLI) int {
			l.waitLine(t, "check selftest")
			return killQEMU(t, l)
		}, "QEMU was killed from outside (killed) while running check selftest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			// Booted, not restored: "during boot" waits for the kernel's banner.
			l := startCLI(t, tt.env, "run", m, "--out", out, "--retries", "0", "--no-snapshot")
			l.out = out
			var qemu int
			if tt.kill != nil {
				qemu = tt.kill(t, l)
			}
			if code := l.wait(t); code != 3 {
				t.Errorf("exit code %d, want 3; stderr:\n%s", code, l.stderr())
			}
			if qemu != 0 {
				if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(qemu))); err == nil {
					t.Errorf("QEMU pid %d survived", qemu)
				}
			}
			r, _ := readResults(t, out)
			if len(r.Results) != 2 {
				t.Fatalf("results: %+v", r.Results)
			}
			for _, rec := range r.Results {
				if rec.Status != "error" || rec.ErrorKind != "qemu" || !strings.Contains(rec.Message, tt.message) {
					t.Errorf("%s = %s/%s %q, want error/qemu containing %q", rec.Check, rec.Status, rec.ErrorKind, rec.Message, tt.message)
				}
			}
			if r.Results[1].Check != "vm" {
				t.Errorf("no record for the VM itself: %+v", r.Results)
			}
		})
	}
}

// waitConsole waits for a VM's console.log under the run directory in out
// to show s.
func waitConsole(t *testing.T, out, s string) {
	t.Helper()
	for deadline := time.Now().Add(hungAfter); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		logs, _ := filepath.Glob(filepath.Join(out, "*", "*", "console.log"))
		for _, p := range logs {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
				return
			}
		}
	}
	t.Fatalf("no console.log under %s shows %q", out, s)
}

func killQEMU(t *testing.T, l *liveCLI) int {
	t.Helper()
	pid := l.qemu(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestQEMUStartFailure: when QEMU exits before it answers QMP, the record
// says what QEMU said, not what the socket did.
func TestQEMUStartFailure(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `
defaults: {memory: 1024G}
kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks: [btf]
`)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", m, "--out", out, "--retries", "0")
	if res.code != 3 {
		t.Errorf("exit code %d, want 3", res.code)
	}
	r, _ := readResults(t, out)
	if len(r.Results) != 2 {
		t.Fatalf("results: %+v", r.Results)
	}
	if r.Results[1].Check != "vm" {
		t.Errorf("second record %q, want the VM's own", r.Results[1].Check)
	}
	for _, rec := range r.Results {
		if rec.ErrorKind != "qemu" || !strings.Contains(rec.Message, "cannot set up guest memory") || strings.Contains(rec.Message, "connection reset") {
			t.Errorf("%s: %s %q, want QEMU's own error", rec.Check, rec.ErrorKind, rec.Message)
		}
	}
}

// TestKernelPanicBeforeAgent: a kernel that panics before the agent runs
// (here: told to run an init that is not in the initramfs, it looks for a
// root file system and finds none) is a VM that never booted; it gets a
// record of its own, kind panic, with the panic line, and no check passes.
func TestKernelPanicBeforeAgent(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `
kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks: [btf]
`)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", m, "--out", out, "--retries", "0", "--no-snapshot", "--append", "rdinit=/vmrunner-no-such-init")
	if res.code != 3 {
		t.Errorf("exit code %d, want 3", res.code)
	}
	r, _ := readResults(t, out)
	if len(r.Results) != 2 || r.Results[1].Check != "vm" {
		t.Fatalf("records %+v, want btf and vm", r.Results)
	}
	for _, rec := range r.Results {
		if rec.Status != "error" || rec.ErrorKind != "panic" || !strings.Contains(rec.Message, "Kernel panic - not syncing: VFS") {
			t.Errorf("%s: %s/%s %q, want error/panic with the kernel's panic line", rec.Check, rec.Status, rec.ErrorKind, rec.Message)
		}
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
		if len(r.Results) != 2 || r.Results[1].Check != "vm" {
			t.Fatalf("want the check's record and the VM's: %+v", r.Results)
		}
		for _, rec := range r.Results {
			if rec.ErrorKind != "initramfs" || !strings.Contains(rec.Message, "No working init found") {
				t.Errorf("%s: %s %q", rec.Check, rec.ErrorKind, rec.Message)
			}
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
		"--boot-timeout", "300ms", "--retries", "2", "--out", out, "--no-snapshot")
	if res.code != 3 {
		t.Errorf("exit code %d, want 3", res.code)
	}
	r, dir := readResults(t, out)
	if len(r.Results) != 2 || r.Results[1].Check != "vm" || r.Results[1].ErrorKind != "boot-timeout" {
		t.Fatalf("want the check's record and the VM's: %+v", r.Results)
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
