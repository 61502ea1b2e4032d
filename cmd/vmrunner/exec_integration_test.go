package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/internal/gotest"
	"github.com/vmrunner/vmrunner/kernels"
)

// goequivDir is a Go test package that needs no particular kernel, with
// every kind of verdict (testdata/goequiv/README.md).
var goequivDir, _ = filepath.Abs("../../testdata/goequiv")

// execFlags is what go test -exec gets: one VM of Debian 6.1.
func execCommand(extra ...string) string {
	return strings.Join(append(append([]string{filepath.Join(binDir, "vmrunner"), "exec", "--kernel", "6.1"}, extra...), "--"), " ")
}

// goTest runs go test in dir with env and args, returning its exit code and
// output.
func goTest(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-count=1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("go test: %v", err)
	}
	t.Logf("go test %s (in %s, %v) → exit %d in %s\n%s", strings.Join(args, " "), dir, env, code, time.Since(start).Round(time.Millisecond), out.String())
	return code, out.String()
}

// TestExecGoTest: go test -exec runs the package's test binary in a VM and
// behaves as on the host: output, testdata/, the exit status (0 passing, 1
// failing), on x86_64 and on arm64 cross-built.
func TestExecGoTest(t *testing.T) {
	integration(t)
	t.Run("x86_64", func(t *testing.T) {
		code, out := goTest(t, goequivDir, []string{"GOARCH=amd64"}, "-exec", execCommand(), "-v", "-run", "TestPass|TestTestdata")
		if code != 0 || !strings.Contains(out, "--- PASS: TestTestdata") || !strings.Contains(out, "a line of output") || !strings.Contains(out, "ok  \texample.com/goequiv") {
			t.Errorf("passing package: exit %d, want 0 with both tests passing", code)
		}
		code, out = goTest(t, goequivDir, []string{"GOARCH=amd64"}, "-exec", execCommand(), "-run", "TestFail|TestPass")
		if code != 1 || !strings.Contains(out, "want 3, got 4") || !strings.Contains(out, "FAIL\texample.com/goequiv") {
			t.Errorf("failing package: exit %d, want 1 with TestFail's message", code)
		}
	})
	t.Run("arm64", func(t *testing.T) {
		code, out := goTest(t, goequivDir, []string{"GOARCH=arm64", "CGO_ENABLED=0"}, "-exec", execCommand(), "-v", "-run", "TestTestdata|TestFail")
		if code != 1 || !strings.Contains(out, "--- PASS: TestTestdata") || !strings.Contains(out, "--- FAIL: TestFail") {
			t.Errorf("arm64: exit %d, want 1 with TestTestdata passing and TestFail failing", code)
		}
	})
}

// TestExecGoTestJSON: go test -json through vmrunner exec gives the verdicts
// go test -json gives on the host, test by test, for a test that panics and
// for one stopped by -timeout.
func TestExecGoTestJSON(t *testing.T) {
	integration(t)
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"panic", "GOEQUIV_PANIC=1", nil},
		{"timeout", "GOEQUIV_HANG=1", []string{"-timeout", "8s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-json"}, tc.args...)
			_, host := goTest(t, goequivDir, []string{tc.env}, append(args, ".")...)
			_, vm := goTest(t, goequivDir, nil, append(args, "-exec", execCommand("--env", tc.env), ".")...)
			want, err := gotest.JSONVerdicts(strings.NewReader(host))
			if err != nil {
				t.Fatal(err)
			}
			got, err := gotest.JSONVerdicts(strings.NewReader(vm))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(want) < 10 {
				t.Errorf("verdicts differ\nin the VM: %v\non the host: %v", got, want)
			}
		})
	}
}

// TestTestCheckGo: the test check with format go gives one record per test
// and subtest with go test -json's verdict on the host, and JUnit one
// testcase per test.
func TestTestCheckGo(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "goequiv.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = goequivDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	m := filepath.Join(dir, "m.yaml")
	write(t, m, `kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks:
  - test: {binary: ./goequiv.test, format: go, dir: `+goequivDir+`, args: ["-test.run", "^Test[^H]"]}
`)
	out, junit := t.TempDir(), filepath.Join(dir, "junit.xml")
	res := vmrunnerCLI(t, "run", m, "--out", out, "--junit", junit)
	if res.code != 1 {
		t.Errorf("exit %d, want 1 (tests fail)", res.code)
	}
	_, host := goTest(t, goequivDir, nil, "-json", "-run", "^Test[^H]", ".")
	want, err := gotest.JSONVerdicts(strings.NewReader(host))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := readResults(t, out)
	got := map[string]string{}
	for _, rec := range r.Results {
		if name, ok := strings.CutPrefix(rec.Check, "test/goequiv.test/"); ok {
			got[name] = rec.Status
		}
	}
	// Record names are the test names made safe for paths.
	for name, v := range want {
		safe := strings.ReplaceAll(name, " ", "_")
		if got[safe] != v {
			t.Errorf("%s: %q in results.json, %q from go test -json", name, got[safe], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d test records, go test -json has %d verdicts", len(got), len(want))
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if strings.HasPrefix(c.Name, "test/goequiv.test/") {
				cases++
			}
		}
	}
	if cases != len(want) {
		t.Errorf("JUnit has %d test cases of goequiv, want %d (one per test)", cases, len(want))
	}
	// A failed test's own output is an artifact.
	if _, err := os.Stat(filepath.Join(out, r.Run.ID, "6.1-x86_64", "test", "goequiv.test", "TestSubtests", "with_space.log")); err != nil {
		t.Errorf("failure output: %v", err)
	}
}

// TestExecProgram: a dynamically linked (cgo) program gets its argv exactly,
// the guest environment the README promises, its directory at the same
// path, and an exit status as a shell reports a signal.
func TestExecProgram(t *testing.T) {
	integration(t)
	probe, dir := buildProbe(t)
	args := []string{"a b", "", "'single'", `"double"`, "$HOME", "--die"}
	// The host's environment passes but for the variables naming the
	// host's session; --env is over it.
	hostEnv := []string{"PROBE_HOST=from the host $(x)", "PROBE=host", "TMPDIR=" + t.TempDir(), "HOME=/home/nobody"}
	res := vmrunnerCLIEnv(t, hostEnv, append([]string{"exec", "--kernel", "6.1", "--dir", dir, "--env", "PROBE=x y", "--", probe}, args...)...)
	if res.code != 128+9 {
		t.Errorf("exit %d, want 137 (SIGKILL)", res.code)
	}
	var r struct {
		Args      []string
		Dir       string
		Env       map[string]string
		UID       int
		CapEff    string `json:"cap_eff"`
		Memlock   uint64
		Mounts    map[string]string
		Testdata  string
		WroteDir  bool `json:"wrote_dir"`
		PageSize  int  `json:"page_size"`
		StdinNull bool `json:"stdin_null"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatalf("stdout is not the probe's report: %v", err)
	}
	if fmt.Sprintf("%q", r.Args) != fmt.Sprintf("%q", args) {
		t.Errorf("argv %q, want %q exactly", r.Args, args)
	}
	if r.Dir != dir || r.Testdata != "hello from the probe's testdata" || !r.WroteDir {
		t.Errorf("dir %s, testdata %q, wrote %v", r.Dir, r.Testdata, r.WroteDir)
	}
	if _, err := os.Stat(filepath.Join(dir, "written-in-guest.txt")); err == nil {
		os.Remove(filepath.Join(dir, "written-in-guest.txt"))
		t.Errorf("a write in the guest reached the host")
	}
	_, tmpdir := r.Env["TMPDIR"]
	if r.Env["PROBE"] != "x y" || r.Env["PROBE_HOST"] != "from the host $(x)" || r.Env["HOME"] != "/root" || tmpdir || !strings.Contains(r.Env["PATH"], "/bin") {
		t.Errorf("environment %v; want PROBE from --env, PROBE_HOST from the host, the guest's HOME and PATH, no TMPDIR", r.Env)
	}
	// --no-host-env: only the guest's and --env's.
	res = vmrunnerCLIEnv(t, hostEnv, "exec", "--kernel", "6.1", "--no-host-env", "--env", "PROBE=x y", "--dir", dir, "--", probe, "x")
	r.Env = nil
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil || res.code != 0 {
		t.Fatalf("--no-host-env: exit %d, stdout is not the probe's report: %v", res.code, err)
	}
	if _, ok := r.Env["PROBE_HOST"]; ok || r.Env["PROBE"] != "x y" || len(r.Env) != 7 {
		t.Errorf("--no-host-env: environment %v, want the guest's six and PROBE", r.Env)
	}
	if caps, err := strconv.ParseUint(r.CapEff, 16, 64); r.UID != 0 || err != nil || caps&(1<<39) == 0 || caps&(1<<21) == 0 {
		t.Errorf("uid %d, CapEff %s: want root with CAP_BPF and CAP_SYS_ADMIN", r.UID, r.CapEff)
	}
	if r.Memlock != ^uint64(0) || r.PageSize != 4096 || !r.StdinNull {
		t.Errorf("memlock %d, page size %d (cgo), stdin /dev/null %v", r.Memlock, r.PageSize, r.StdinNull)
	}
	for mnt, fs := range map[string]string{"/sys/fs/bpf": "bpf", "/sys/kernel/tracing": "tracefs", "/sys/kernel/debug": "debugfs", "/sys/fs/cgroup": "cgroup2", "/tmp": "tmpfs"} {
		if r.Mounts[mnt] != fs {
			t.Errorf("%s is %q, want %s", mnt, r.Mounts[mnt], fs)
		}
	}
	if !strings.Contains(res.stderr, "execprobe: done") {
		t.Errorf("stderr lacks the program's own")
	}
}

// TestExecShape: --cpus and --memory give the program that many CPUs and
// that memory, in a VM saved and restored under a snapshot of its own
// shape; the default shape's VM still has one CPU.
func TestExecShape(t *testing.T) {
	integration(t)
	probe, dir := buildProbe(t)
	type seen struct {
		NumCPU   int `json:"num_cpu"`
		MemTotal int `json:"mem_total_kb"`
	}
	run := func(args ...string) (seen, string) {
		t.Helper()
		res, boot := execBoot(t, append(append([]string{"--kernel", "6.1", "--dir", dir}, args...), "--", probe, "x")...)
		var s seen
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &s) != nil {
			t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		t.Logf("%v: %d CPUs, MemTotal %d kB, boot %s", args, s.NumCPU, s.MemTotal, boot)
		return s, boot
	}
	shape := []string{"--cpus", "2", "--memory", "768M"}
	s, boot := run(shape...)
	if boot != "snapshot" { // the first run of a shape boots and saves
		s, boot = run(shape...)
	}
	// MemTotal is the memory less what the kernel keeps for itself.
	if s.NumCPU != 2 || s.MemTotal <= 512<<10 || s.MemTotal > 768<<10 || boot != "snapshot" {
		t.Errorf("%v: %d CPUs, MemTotal %d kB, boot %s; want 2 CPUs, 512-768 MiB, restored from its snapshot", shape, s.NumCPU, s.MemTotal, boot)
	}
	if s, _ := run(); s.NumCPU != 1 || s.MemTotal > 512<<10 {
		t.Errorf("default shape: %d CPUs, MemTotal %d kB; want 1 CPU, at most 512 MiB", s.NumCPU, s.MemTotal)
	}
}

// buildProbe builds testdata/execprobe with cgo for x86_64 (dynamically
// linked) and returns it and its directory.
func buildProbe(t *testing.T) (string, string) {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/execprobe")
	probe := filepath.Join(t.TempDir(), "execprobe")
	build := exec.Command("go", "build", "-o", probe, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=1", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build execprobe: %v\n%s", err, out)
	}
	return probe, dir
}

// TestExecHang: a program that outlives --timeout is stopped after a task
// dump: exit 3 with the check's error record, the dump in console.log. On
// a kernel without a virtio console too (noVirtioConsoleKernel): there the
// agent raises the quiet console's log level for the dump, with no frame
// in flight, so that the dump is printed and cuts no frame.
func TestExecHang(t *testing.T) {
	integration(t)
	probe, dir := buildProbe(t)
	tmp := t.TempDir()
	noVcon := filepath.Join(tmp, "matrix.yaml")
	if err := os.WriteFile(noVcon, []byte("kernels:\n"+noVirtioConsoleKernel(t, tmp, kernels.X86_64)+"checks: [btf]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, kernel, matrix, channel string }{
		{"virtio-serial", "6.1", "", "virtio-serial"},
		{"console", "no-vcon-x86_64", noVcon, "console"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := []string{"exec", "--kernel", tc.kernel, "--timeout", "20s", "--dir", dir, "--out", out}
			if tc.matrix != "" {
				args = append(args, "--matrix", tc.matrix)
			}
			res := vmrunnerCLI(t, append(args, "--", probe, "--hang")...)
			if res.code != 3 {
				t.Errorf("exit %d, want 3", res.code)
			}
			if !strings.Contains(res.stdout, `"args":["--hang"]`) {
				t.Errorf("the program's output before it hung is missing")
			}
			if !strings.Contains(res.stderr, "did not exit in time") || !strings.Contains(res.stderr, "task dump") {
				t.Errorf("stderr does not say the program was stopped after a task dump")
			}
			var r struct {
				Run struct {
					ExitCode int `json:"exit_code"`
				}
				Results []struct {
					Check, Status, Channel, Console string
					ErrorKind                       string `json:"error_kind"`
				}
			}
			runDir := readLatest(t, out, &r)
			var rec, console string
			for _, x := range r.Results {
				if x.Channel != tc.channel {
					t.Errorf("%s: channel %q, want %s", x.Check, x.Channel, tc.channel)
				}
				if x.Check == "test/execprobe" {
					rec, console = x.Status+"/"+x.ErrorKind, x.Console
				}
			}
			if rec != "error/check" || r.Run.ExitCode != 3 {
				t.Fatalf("test/execprobe is %q, exit code %d; want error/check and 3: %+v", rec, r.Run.ExitCode, r)
			}
			b, err := os.ReadFile(filepath.Join(runDir, console))
			if err != nil || !strings.Contains(string(b), "execprobe") || !strings.Contains(string(b), "sysrq: Show State") {
				t.Errorf("console.log has no task dump showing execprobe (%v)", err)
			}
		})
	}
}

// TestExecPanic: a kernel panic while the program runs is exit 3 with the
// panic's error record, as for a built-in check.
func TestExecPanic(t *testing.T) {
	integration(t)
	probe, dir := buildProbe(t)
	out := t.TempDir()
	res := vmrunnerCLI(t, "exec", "--kernel", "6.1", "--dir", dir, "--out", out, "--", probe, "--panic")
	if res.code != 3 || !strings.Contains(res.stderr, "panic") {
		t.Errorf("exit %d, want 3 naming the panic", res.code)
	}
	r, _ := readResults(t, out)
	found := false
	for _, rec := range r.Results {
		found = found || rec.Check == "test" && rec.Status == "error" && rec.ErrorKind == "panic"
	}
	if !found {
		t.Errorf("results %+v, want the test check's record an error of kind panic", r.Results)
	}
}

// TestExecInterrupt: Ctrl-C while the program runs stops the VM: exit 130,
// no QEMU left.
func TestExecInterrupt(t *testing.T) {
	integration(t)
	probe, dir := buildProbe(t)
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "exec", "--kernel", "6.1", "--dir", dir, "--", probe, "--hang")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the program has written its report: it runs.
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(se.String(), "execprobe: done") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	qemus := childrenNamed(cmd.Process.Pid, "qemu-system")
	if len(qemus) == 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("no QEMU running the program; stderr:\n%s", se.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want 130; stderr:\n%s", err, se.String())
	}
	for _, pid := range qemus {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("QEMU pid %d survived the interrupt", pid)
		}
	}
}

// TestExecBadInput: what exec refuses before anything boots, exit 2.
func TestExecBadInput(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	write(t, text, "hello")
	big := filepath.Join(dir, "big")
	write(t, filepath.Join(big, "blob"), strings.Repeat("b", 2<<20))
	arm := filepath.Join(dir, "arm.test")
	build := exec.Command("go", "test", "-c", "-o", arm, ".")
	build.Dir = goequivDir
	build.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing program", []string{"--", filepath.Join(dir, "nope")}, "no such file"},
		{"not an ELF", []string{"--", text}, "not an ELF executable"},
		{"arch mismatch", []string{"--arch", "x86_64", "--", arm}, "it is arm64 but --arch x86_64"},
		{"file onto /proc", []string{"--file", text + ":/proc/x", "--", arm}, "the guest's own"},
		{"directory too large", []string{"--dir", big, "--max-dir-size", "1M", "--", arm}, "--max-dir-size"},
		{"unknown kernel", []string{"--kernel", "2.6", "--", arm}, `no kernel "2.6"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := vmrunnerCLI(t, append([]string{"exec"}, tc.args...)...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 saying %q", res.code, res.stderr, tc.want)
			}
		})
	}
}

// write writes content to path, creating its directory.
func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExampleTracepoint runs examples/tracepoint on the default matrix
// through its own matrix.yaml: the ring buffer test passes everywhere, the
// bpf_loop test is skipped on 5.10 and passes on 6.1 and 6.12, on both
// arches.
func TestExampleTracepoint(t *testing.T) {
	integration(t)
	example, _ := filepath.Abs("../../examples/tracepoint")
	dir := t.TempDir()
	for _, a := range []struct{ goarch, arch string }{{"amd64", "x86_64"}, {"arm64", "arm64"}} {
		build := exec.Command("go", "test", "-c", "-o", filepath.Join(dir, "tracepoint-"+a.arch+".test"), ".")
		build.Dir = example
		build.Env = append(os.Environ(), "GOARCH="+a.goarch, "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the example for %s: %v\n%s", a.arch, err, out)
		}
	}
	m, err := os.ReadFile(filepath.Join(example, "matrix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "matrix.yaml"), string(m))
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", filepath.Join(dir, "matrix.yaml"), "--out", out)
	if res.code != 0 {
		t.Errorf("exit %d, want 0", res.code)
	}
	r, _ := readResults(t, out)
	got := map[string]string{}
	for _, rec := range r.Results {
		got[rec.Kernel+"/"+rec.Arch+" "+rec.Check] = rec.Status
	}
	for _, k := range []string{"5.10", "6.1", "6.12"} {
		for _, a := range []string{"x86_64", "arm64"} {
			loop := "pass"
			if k == "5.10" {
				loop = "skip"
			}
			for check, want := range map[string]string{
				"test/tracepoint.test":                 "pass",
				"test/tracepoint.test/TestGetpidEvent": "pass",
				"test/tracepoint.test/TestLoopHelper":  loop,
			} {
				if s := got[k+"/"+a+" "+check]; s != want {
					t.Errorf("%s/%s %s: %q, want %s", k, a, check, s, want)
				}
			}
		}
	}
}
