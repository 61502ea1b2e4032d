package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The integration tier drives the real CLI on real Debian kernels under QEMU.
// It downloads from the Debian mirror into the user cache (once) and needs
// qemu-system-x86_64 and qemu-system-aarch64; `make test` installs them.
// Set VMRUNNER_SKIP_INTEGRATION=1 to run only the unit tests.

var binDir string // vmrunner and both agents, built once

// TestMain lets testscript run this test binary as the vmrunner command of
// the scripts in testdata/script (TestScripts); run as the tests, it
// builds the binaries of the integration tier first.
func TestMain(m *testing.M) {
	testscript.Main(buildFirst{m}, map[string]func(){"vmrunner": main})
}

type buildFirst struct{ m *testing.M }

func (b buildFirst) Run() int {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		return b.m.Run()
	}
	dir, err := os.MkdirTemp("", "vmrunner-it-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		os.Stderr.WriteString("build binaries: " + err.Error() + "\n")
		return 1
	}
	return b.m.Run()
}

func buildBinaries(dir string) error {
	builds := [][]string{
		{"", "", "-o", filepath.Join(dir, "vmrunner"), "."},
		{"amd64", "0", "-o", filepath.Join(dir, "vmrunner-agent-x86_64"), "../vmrunner-agent"},
		{"arm64", "0", "-o", filepath.Join(dir, "vmrunner-agent-arm64"), "../vmrunner-agent"},
		{"amd64", "0", "-o", filepath.Join(dir, "vmrunner-workload-x86_64"), "../vmrunner-workload"},
		{"arm64", "0", "-o", filepath.Join(dir, "vmrunner-workload-arm64"), "../vmrunner-workload"},
		// The agent that misbehaves on purpose (TestHostileGuest).
		{"amd64", "0", "-o", filepath.Join(dir, "hostile", "vmrunner-agent-x86_64"), "../../internal/testsupport/hostileagent"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", append([]string{"build", "-trimpath"}, b[2:]...)...)
		cmd.Env = os.Environ()
		if b[0] != "" {
			cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+b[0], "CGO_ENABLED="+b[1])
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return errors.New(string(out))
		}
	}
	return nil
}

func integration(t *testing.T) {
	t.Helper()
	if binDir == "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	for _, q := range []string{"qemu-system-x86_64", "qemu-system-aarch64"} {
		if _, err := exec.LookPath(q); err != nil {
			t.Fatalf("%s not installed: run `make install-deps` (or set VMRUNNER_SKIP_INTEGRATION=1)", q)
		}
	}
}

type cliResult struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // peak resident set size of vmrunner, bytes
}

func vmrunnerCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return vmrunnerCLIEnv(t, nil, args...)
}

func vmrunnerCLIEnv(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	res := cliResult{stdout: so.String(), stderr: se.String()}
	if cmd.ProcessState == nil {
		t.Fatalf("run vmrunner: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run vmrunner: %v", err)
	}
	t.Logf("vmrunner %s → exit %d in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code,
		time.Since(start).Round(time.Millisecond), res.stdout, res.stderr)
	return res
}

type resultsFile struct {
	Run struct {
		ID       string `json:"id"`
		Finished bool   `json:"finished"`
		ExitCode int    `json:"exit_code"`
	} `json:"run"`
	Results []struct {
		Kernel        string `json:"kernel"`
		Arch          string `json:"arch"`
		KernelRelease string `json:"kernel_release"`
		Check         string `json:"check"`
		Status        string `json:"status"`
		ErrorKind     string `json:"error_kind"`
		Message       string `json:"message"`
		Console       string `json:"console"`
		Source        struct {
			Type    string `json:"type"`
			Package string `json:"package"`
			SHA256  string `json:"sha256"`
		} `json:"source"`
		Details struct {
			VmlinuxPresent bool              `json:"vmlinux_present"`
			Types          int               `json:"types"`
			Missing        []string          `json:"missing"`
			Config         map[string]string `json:"config"`
		} `json:"details"`
	} `json:"results"`
}

func readResults(t *testing.T, out string) (resultsFile, string) {
	t.Helper()
	var r resultsFile
	dir := readLatest(t, out, &r)
	return r, dir
}

// readLatest decodes <out>/latest/results.json into v and returns the run directory.
func readLatest(t *testing.T, out string, v any) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Join(out, "latest"))
	if err != nil {
		t.Fatalf("%s/latest: %v", out, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return dir
}

// TestDefaultMatrix boots all six VMs of the shipped matrix.yaml (Debian 5.10,
// 6.1 and 6.12 on x86_64 and arm64) and requires the btf check to pass on each,
// with the guest's own uname -r matching the Debian kernel line.
func TestDefaultMatrix(t *testing.T) {
	integration(t)
	out := t.TempDir()
	start := time.Now()
	// The features and verifier checks of the default matrix have their own
	// test, TestDefaultMatrixProbes.
	res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--check", "btf", "--out", out)
	t.Logf("default matrix wall time: %s", time.Since(start).Round(time.Millisecond))
	if res.code != 0 {
		t.Fatalf("exit code %d, want 0", res.code)
	}
	r, dir := readResults(t, out)
	if !r.Run.Finished || r.Run.ExitCode != 0 {
		t.Errorf("run record: finished=%v exit_code=%d", r.Run.Finished, r.Run.ExitCode)
	}
	want := map[string]*regexp.Regexp{
		"5.10": regexp.MustCompile(`^5\.10\.\d+-\d+-(amd64|cloud-arm64)$`),
		"6.1":  regexp.MustCompile(`^6\.1\.\d+-\d+-(amd64|cloud-arm64)$`),
		"6.12": regexp.MustCompile(`^6\.12\.\d+\+deb13-(amd64|cloud-arm64)$`),
	}
	seen := map[string]bool{}
	for _, rec := range r.Results {
		key := rec.Kernel + "/" + rec.Arch
		seen[key] = true
		if rec.Check != "btf" || rec.Status != "pass" {
			t.Errorf("%s: %s = %s (%s), want btf pass", key, rec.Check, rec.Status, rec.Message)
		}
		if re := want[rec.Kernel]; re == nil || !re.MatchString(rec.KernelRelease) {
			t.Errorf("%s: kernel_release %q does not look like Debian's %s", key, rec.KernelRelease, rec.Kernel)
		}
		if rec.Arch == "arm64" && !strings.HasSuffix(rec.KernelRelease, "arm64") || rec.Arch == "x86_64" && !strings.HasSuffix(rec.KernelRelease, "amd64") {
			t.Errorf("%s: kernel_release %q is for the wrong arch", key, rec.KernelRelease)
		}
		if !rec.Details.VmlinuxPresent || rec.Details.Types < 10000 || len(rec.Details.Missing) > 0 {
			t.Errorf("%s: BTF details: present=%v types=%d missing=%v", key, rec.Details.VmlinuxPresent, rec.Details.Types, rec.Details.Missing)
		}
		if rec.Details.Config["BPF_SYSCALL"] != "y" || rec.Details.Config["DEBUG_INFO_BTF"] != "y" {
			t.Errorf("%s: config BPF_SYSCALL=%q DEBUG_INFO_BTF=%q, want y", key, rec.Details.Config["BPF_SYSCALL"], rec.Details.Config["DEBUG_INFO_BTF"])
		}
		if rec.Source.Type != "debian" || len(rec.Source.SHA256) != 64 || !strings.HasPrefix(rec.Source.Package, "linux-image-") {
			t.Errorf("%s: source %+v", key, rec.Source)
		}
		if fi, err := os.Stat(filepath.Join(dir, rec.Console)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: console log %q missing or empty: %v", key, rec.Console, err)
		}
	}
	for _, k := range []string{"5.10", "6.1", "6.12"} {
		for _, a := range []string{"x86_64", "arm64"} {
			if !seen[k+"/"+a] {
				t.Errorf("no result for %s/%s", k, a)
			}
		}
	}
	if !strings.Contains(res.stdout, "KERNEL") || !strings.Contains(res.stdout, "RELEASE") {
		t.Errorf("summary table missing from stdout")
	}
}

// TestMissingBTFTypeFails asks for a type no kernel has: the check must fail
// (exit 1) and name the missing type, on one VM.
func TestMissingBTFTypeFails(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `
kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks:
  - btf: {require: [task_struct, vmrunner_no_such_type]}
`)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", m, "--out", out)
	if res.code != 1 {
		t.Fatalf("exit code %d, want 1", res.code)
	}
	r, _ := readResults(t, out)
	if len(r.Results) != 1 || r.Results[0].Status != "fail" || !strings.Contains(r.Results[0].Message, "vmrunner_no_such_type") {
		t.Fatalf("results: %+v", r.Results)
	}
}

func TestBadInput(t *testing.T) {
	integration(t)
	tests := []struct {
		name     string
		matrix   string
		args     []string
		code     int
		contains []string
	}{
		{
			name: "unknown key",
			matrix: `kernels:
  - name: "6.1"
    sourc: {debian: {suite: bookworm}}
checks: [btf]
`,
			code:     2,
			contains: []string{"matrix.yaml:3:5", "sourc", "source"},
		},
		{
			name: "unknown check",
			matrix: `kernels:
  - name: "6.1"
    source: {debian: {suite: bookworm}}
checks:
  - bft
`,
			code:     2,
			contains: []string{"matrix.yaml:5:5", "bft"},
		},
		{
			name: "unknown suite",
			matrix: `kernels:
  - name: nope
    arch: x86_64
    source: {debian: {suite: no-such-suite}}
checks: [btf]
`,
			code:     2,
			contains: []string{"no-such-suite"},
		},
		{
			name:     "bad flag value",
			matrix:   "kernels: [{name: a, source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n",
			args:     []string{"--arch", "sparc"},
			code:     2,
			contains: []string{"sparc"},
		},
		{
			name:     "missing matrix file",
			args:     []string{},
			code:     2,
			contains: []string{"no-such-matrix.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "no-such-matrix.yaml")
			if tt.matrix != "" {
				path = writeFile(t, "matrix.yaml", tt.matrix)
			}
			res := vmrunnerCLI(t, append([]string{"run", path, "--out", t.TempDir()}, tt.args...)...)
			if res.code != tt.code {
				t.Errorf("exit code %d, want %d", res.code, tt.code)
			}
			for _, s := range tt.contains {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr does not mention %q", s)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInfrastructureErrors: problems outside the user's matrix are exit 3,
// named, and do not stop the rest of the matrix.
func TestInfrastructureErrors(t *testing.T) {
	integration(t)
	t.Run("missing qemu for one arch", func(t *testing.T) {
		// A PATH that has qemu-system-x86_64 but no qemu-system-aarch64.
		bin := t.TempDir()
		x86, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(x86, filepath.Join(bin, "qemu-system-x86_64")); err != nil {
			t.Fatal(err)
		}
		m := writeFile(t, "matrix.yaml", `
kernels:
  - name: "6.1"
    source: {debian: {suite: bookworm}}
checks: [btf]
`)
		out := t.TempDir()
		res := vmrunnerCLIEnv(t, []string{"PATH=" + bin}, "run", m, "--out", out)
		if res.code != 3 {
			t.Fatalf("exit code %d, want 3", res.code)
		}
		if !strings.Contains(res.stderr, "qemu-system-aarch64 not found") || !strings.Contains(res.stderr, "apt-get install qemu-system-arm") {
			t.Errorf("stderr does not name the missing binary and the fix")
		}
		r, _ := readResults(t, out)
		got := map[string]string{}
		for _, rec := range r.Results {
			got[rec.Arch] = rec.Status + "/" + rec.ErrorKind
		}
		if got["x86_64"] != "pass/" || got["arm64"] != "error/qemu" {
			t.Errorf("results %v, want x86_64 pass and arm64 error/qemu", got)
		}
	})
	t.Run("unreachable mirror", func(t *testing.T) {
		m := writeFile(t, "matrix.yaml", `
kernels:
  - name: offline
    arch: x86_64
    source: {debian: {suite: vmrunner-test-unreachable, mirror: "http://127.0.0.1:1/debian"}}
checks: [btf]
`)
		out := t.TempDir()
		res := vmrunnerCLI(t, "run", m, "--out", out)
		if res.code != 3 {
			t.Fatalf("exit code %d, want 3", res.code)
		}
		if !strings.Contains(res.stderr, "127.0.0.1:1") || !strings.Contains(res.stderr, "mirror") {
			t.Errorf("stderr does not name the mirror")
		}
		// A VM whose kernel could not be had never booted: it has a
		// record of its own beside its check's.
		r, _ := readResults(t, out)
		if len(r.Results) != 2 || r.Results[1].Check != "vm" {
			t.Fatalf("records %+v, want btf and vm", r.Results)
		}
		for _, rec := range r.Results {
			if rec.Status != "error" || rec.ErrorKind != "kernel" || !strings.Contains(rec.Message, "127.0.0.1:1") {
				t.Errorf("%s: %s/%s %q, want error/kernel naming the mirror", rec.Check, rec.Status, rec.ErrorKind, rec.Message)
			}
		}
	})
}

// TestInterrupt sends SIGINT while VMs are booting: vmrunner exits 130,
// records the unfinished VMs as interrupted and leaves no QEMU behind.
func TestInterrupt(t *testing.T) {
	integration(t)
	out, tmp := t.TempDir(), t.TempDir()
	// Booted, not restored: the interrupt comes while the kernels boot.
	l := startCLI(t, []string{"TMPDIR=" + tmp}, "run", "../../matrix.yaml", "--kernel", "6.1", "--check", "btf", "--out", out, "--no-snapshot")
	// Interrupt once a VM boots.
	l.waitLine(t, "boot")
	l.qemu(t)
	qemus := childrenNamed(l.cmd.Process.Pid, "qemu-system")
	if err := l.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := l.wait(t); code != 130 {
		t.Errorf("exit code %d, want 130; stderr:\n%s", code, l.stderr())
	}
	for _, pid := range qemus {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("QEMU pid %d survived the interrupt", pid)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	r, _ := readResults(t, out)
	interrupted := 0
	for _, rec := range r.Results {
		if rec.ErrorKind == "interrupted" {
			interrupted++
		}
	}
	if interrupted == 0 || !r.Run.Finished || r.Run.ExitCode != 130 {
		t.Errorf("results: %d interrupted, finished=%v exit_code=%d", interrupted, r.Run.Finished, r.Run.ExitCode)
	}
}

// childrenNamed lists the pids whose parent is ppid and whose command name starts with prefix.
func childrenNamed(ppid int, prefix string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		if strings.HasPrefix(s[open+1:closing], prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}
