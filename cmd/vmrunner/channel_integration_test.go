package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestConsoleChannel boots Debian 12's 6.1 kernels with their module tree
// trimmed of virtio_console.ko, as a kernel without a virtio console: the
// agent must fall back to the serial console on its own, the btf check
// must pass over it, every record must name the console as the channel,
// and console.log must keep the kernel's text without the frames. A panic
// on arm64 (seen on the console alone: no pvpanic) is still a panic there:
// the quiet console still shows it.
func TestConsoleChannel(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	var matrix strings.Builder
	matrix.WriteString("kernels:\n")
	lines := map[kernels.Arch]string{}
	for _, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		lines[arch] = noVirtioConsoleKernel(t, dir, arch)
		matrix.WriteString(lines[arch])
	}
	matrix.WriteString("checks: [btf]\n")
	mf := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(mf, []byte(matrix.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	res := vmrunnerCLI(t, "run", "--out", out, mf)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0\n%s", res.code, res.stderr)
	}
	var r struct {
		Results []struct {
			Kernel, Arch, Check, Status, Message, Channel, Console string
		} `json:"results"`
	}
	runDir := readLatest(t, out, &r)
	if len(r.Results) != 2 {
		t.Fatalf("%d records, want 2 (btf on each arch): %+v", len(r.Results), r.Results)
	}
	for _, rec := range r.Results {
		if rec.Check != "btf" || rec.Status != "pass" || rec.Channel != "console" {
			t.Errorf("%s/%s: %s %s channel %q, want btf pass over the console", rec.Kernel, rec.Arch, rec.Check, rec.Status, rec.Channel)
		}
		con, err := os.ReadFile(filepath.Join(runDir, rec.Console))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Linux version", "no virtio console driver", "speaking over the serial console"} {
			if !strings.Contains(string(con), want) {
				t.Errorf("%s console.log lacks %q", rec.Arch, want)
			}
		}
		if strings.Contains(string(con), "=vmrunner1=") {
			t.Errorf("%s console.log holds frames: they are messages, not console text", rec.Arch)
		}
	}
	t.Logf("records: %+v", r.Results)

	// A check's data file (repro's object) reaches a console-channel guest
	// in its initramfs, not over the slow line, and the verifier's log
	// comes back over the console.
	res = vmrunnerCLI(t, "repro", "--matrix", mf, "--kernel", "no-vcon-x86_64", "--arch", "x86_64",
		"--object", "../../testdata/bpf/probes.o", "--program", "rejected_stack_oob", "--out", out)
	if res.code != 1 || !strings.Contains(res.stdout, "invalid read from stack") {
		t.Errorf("repro: exit %d, want 1 with the verifier's log", res.code)
	}
	var rr struct {
		Results []struct{ Check, Status, Channel string }
	}
	readLatest(t, out, &rr)
	for _, rec := range rr.Results {
		if rec.Channel != "console" {
			t.Errorf("repro: %s channel %q, want console", rec.Check, rec.Channel)
		}
	}

	panicMatrix := filepath.Join(dir, "panic.yaml")
	if err := os.WriteFile(panicMatrix, []byte("kernels:\n"+lines[kernels.ARM64]+"checks:\n  - selftest: {action: panic}\n  - btf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = vmrunnerCLI(t, "run", "--out", out, panicMatrix)
	if res.code != 3 {
		t.Errorf("panic: exit %d, want 3", res.code)
	}
	var p struct {
		Results []struct {
			Check, Status, Message, Channel, Console string
			ErrorKind                                string `json:"error_kind"`
		} `json:"results"`
	}
	runDir = readLatest(t, out, &p)
	if len(p.Results) != 3 {
		t.Fatalf("panic: %d records, want selftest, btf and vm: %+v", len(p.Results), p.Results)
	}
	for _, rec := range p.Results {
		if rec.Status != "error" || rec.Channel != "console" {
			t.Errorf("panic: %s %s %q channel %q, want an error over the console", rec.Check, rec.Status, rec.Message, rec.Channel)
		}
	}
	if st := p.Results[0]; st.ErrorKind != "panic" || !strings.Contains(st.Message, "sysrq triggered crash") {
		t.Errorf("panic: selftest %s/%s %q, want error/panic with the panic line", st.Status, st.ErrorKind, st.Message)
	}
	if con, err := os.ReadFile(filepath.Join(runDir, p.Results[0].Console)); err != nil || !strings.Contains(string(con), "Kernel panic") {
		t.Errorf("panic: console.log lacks the panic (%v)", err)
	}
}

// noVirtioConsoleKernel returns a matrix kernel entry (one line, indented
// for a kernels: list) named no-vcon-<arch>: Debian 12's 6.1 kernel for
// arch from a file: source whose module tree, written under dir, lacks
// virtio_console.ko, as a kernel without a virtio console.
func noVirtioConsoleKernel(t *testing.T, dir string, arch kernels.Arch) string {
	t.Helper()
	k, err := kernels.Resolve(context.Background(), "fixture", kernels.Spec{Debian: &kernels.DebianSpec{Suite: "bookworm"}}, arch, kernels.Options{})
	if err != nil {
		t.Fatalf("resolve Debian bookworm for %s: %v", arch, err)
	}
	mods := filepath.Join(dir, string(arch))
	kept, dropped := 0, 0
	for _, f := range kerneltest.Files(t, k, kerneltest.ModulesOnly) {
		if strings.Contains(filepath.Base(f.Name), "virtio_console") {
			dropped++
			continue
		}
		p := filepath.Join(mods, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		kept++
	}
	if dropped != 1 {
		t.Fatalf("%s: %d virtio_console files dropped, want 1: the kernel must have it as a module for this test", arch, dropped)
	}
	t.Logf("%s %s: %d module files kept, virtio_console.ko removed", arch, k.Release, kept)
	return `  - {name: no-vcon-` + string(arch) + `, arch: ` + string(arch) + `, source: {file: {kernel: "` + k.Image + `", modules: "` + filepath.Join(mods, "lib", "modules", k.Release) + `", config: "` + k.Config + `"}}}` + "\n"
}

// TestConsoleChannelHostile runs, over the console channel (the kernel of
// noVirtioConsoleKernel: the agent's frames share the serial line with the
// kernel's text), what TestGuestFailures and TestHostileGuest run over
// virtio-serial: a hung check that the host's watchdog ends (SysRq raises
// the quiet console's log level so that the task dump is printed), and a
// representative set of hostile agents: one that lies about its results,
// one that exits after reporting, one that floods a frame, one that puts
// escapes in its text, and one whose frame is cut by the kernel's own
// text. x86_64 only: what is tested is the host's reading of one serial
// line, the same on both arches (TestConsoleChannel covers arm64), and the
// hostile agent is built for x86_64.
func TestConsoleChannelHostile(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	kernel := noVirtioConsoleKernel(t, dir, kernels.X86_64)
	type record struct {
		Check, Status, Message, Channel, Console string
		ErrorKind                                string `json:"error_kind"`
	}
	run := func(t *testing.T, timeout, checks string, args ...string) (int, cliResult, map[string]record, string) {
		t.Helper()
		m := filepath.Join(t.TempDir(), "matrix.yaml")
		if err := os.WriteFile(m, []byte("defaults: {timeout: "+timeout+"}\nkernels:\n"+kernel+checks), 0o644); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		res := vmrunnerCLI(t, append([]string{"run", m, "--out", out, "--retries", "0", "--no-snapshot"}, args...)...)
		var r struct{ Results []record }
		runDir := readLatest(t, out, &r)
		recs := map[string]record{}
		for _, rec := range r.Results {
			recs[rec.Check] = rec
			if rec.Channel != "console" {
				t.Errorf("%s: channel %q, want console", rec.Check, rec.Channel)
			}
		}
		var console string
		if len(r.Results) > 0 {
			b, err := os.ReadFile(filepath.Join(runDir, r.Results[0].Console))
			if err != nil {
				t.Fatal(err)
			}
			console = string(b)
		}
		return res.code, res, recs, console
	}

	t.Run("hung check, host watchdog", func(t *testing.T) {
		code, _, recs, console := run(t, "20s", "checks:\n  - selftest: {action: hang, timeout: 10m}\n  - btf\n")
		if code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		for _, check := range []string{"selftest", "btf", "vm"} {
			rec := recs[check]
			if rec.Status != "error" || rec.ErrorKind != "timeout" || !strings.Contains(rec.Message, "did not finish within 20s") {
				t.Errorf("%s: %s/%s %q, want error/timeout", check, rec.Status, rec.ErrorKind, rec.Message)
			}
		}
		if !strings.Contains(recs["vm"].Message, "task dump (SysRq t, l, w) in console.log") {
			t.Errorf("vm record %q does not point at the task dump", recs["vm"].Message)
		}
		// The dump is printed although the agent set kernel.printk to 1.
		for _, want := range []string{"sysrq: Loglevel set to 7", "sysrq: Show State", "task:init", "Call Trace:", "sysrq: Show Blocked State"} {
			if !strings.Contains(console, want) {
				t.Errorf("console.log lacks %q", want)
			}
		}
	})

	const checks = "checks:\n  - btf\n  - selftest: {action: pass}\n"
	for _, tt := range []struct {
		mode    string
		exit    int
		vmKind  string // the VM's own record; "" for none
		vmMsg   string
		checks  string // btf's and selftest's status; "*": either
		console string // in console.log
	}{
		// The VM's record is what tells these from a pass.
		{"wrong-done-count", 3, "protocol", "done counts 4 results, 2 arrived", "pass pass", ""},
		// The results' frames may be lost to the panic printed while they
		// were still going out of the tty: the VM's record tells.
		{"exit-after-results", 3, "agent", "guest agent (PID 1) exited", "* *", "Attempted to kill init"},
		{"flood-frame", 3, "protocol", "exceeds size limit", "error error", ""},
		// Refused by the line bound, long before the 60 s VM timeout.
		{"endless-frame-line", 3, "protocol", "exceeds size limit: a line of more than 4096 bytes", "error error", ""},
		{"frame-cut", 3, "protocol", "cut or mixed with other text", "pass error", "kernel text in the middle of a frame"},
		{"escapes-in-text", 0, "", "", "pass pass", ""},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			code, res, recs, console := run(t, "60s", checks, "--agent-dir", filepath.Join(binDir, "hostile"), "--append", "vmrunner.hostile="+tt.mode)
			if code != tt.exit {
				t.Errorf("exit %d, want %d", code, tt.exit)
			}
			got := recs["btf"].Status + " " + recs["selftest"].Status
			want := strings.Replace(strings.Replace(tt.checks, "*", recs["btf"].Status, 1), "*", recs["selftest"].Status, 1)
			if got != want {
				t.Errorf("btf, selftest = %s, want %s (%+v)", got, tt.checks, recs)
			}
			vm, hasVM := recs["vm"]
			switch {
			case tt.vmKind == "" && hasVM:
				t.Errorf("a VM that ended well has a record: %+v", vm)
			case tt.vmKind != "" && !hasVM:
				t.Errorf("no record for the VM itself: %+v", recs)
			case tt.vmKind != "":
				if vm.Status != "error" || vm.ErrorKind != tt.vmKind || !strings.Contains(vm.Message, tt.vmMsg) {
					t.Errorf("VM record %s/%s %q, want error/%s containing %q", vm.Status, vm.ErrorKind, vm.Message, tt.vmKind, tt.vmMsg)
				}
			}
			if tt.console != "" && !strings.Contains(console, tt.console) {
				t.Errorf("console.log lacks %q", tt.console)
			}
			for what, s := range map[string]string{"stdout": res.stdout, "stderr": res.stderr} {
				if strings.ContainsAny(s, "\x1b\x07\b\r\u009b\u202e") {
					t.Errorf("%s carries a control character from the guest: %q", what, s)
				}
			}
			if tt.mode == "escapes-in-text" {
				for _, rec := range recs {
					if strings.ContainsAny(rec.Message, "\x1b\x07\b\r\u009b\u202e") || !strings.Contains(rec.Message, `\x1b[31m`) {
						t.Errorf("%s message not sanitised: %q", rec.Check, rec.Message)
					}
				}
			}
		})
	}
}

// TestConsoleChannelNoise: VMs on the console channel (the kernels of
// noVirtioConsoleKernel, both arches) whose guest prints to the console
// as fast as it can, at every log level and on the tty (selftest
// console-noise), while the real checks' frames flow: no honest frame is
// lost, so every check passes and no VM has a record of its own. CI runs
// 4 VMs; VMRUNNER_SOAK=N runs N (the figure in the closing note
// comes from VMRUNNER_SOAK=200).
func TestConsoleChannelNoise(t *testing.T) {
	integration(t)
	n := 4
	if s := os.Getenv("VMRUNNER_SOAK"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("VMRUNNER_SOAK=%q: want a number of VMs", s)
		}
	}
	dir := t.TempDir()
	var matrix strings.Builder
	matrix.WriteString("defaults: {timeout: 5m}\nkernels:\n")
	for i, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		line := noVirtioConsoleKernel(t, dir, arch)
		for j := i; j < n; j += 2 {
			matrix.WriteString(strings.Replace(line, "name: no-vcon-"+string(arch), fmt.Sprintf("name: noise-%d-%s", j, arch), 1))
		}
	}
	matrix.WriteString("checks:\n  - selftest: {action: console-noise}\n  - btf\n  - features\n" +
		"  - verifier: {objects: [" + probesObject(t, dir) + "], expect: {rejected_stack_oob: {fail: [\">=3.18\"]}}}\n")
	mf := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(mf, []byte(matrix.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	start := time.Now()
	res := vmrunnerCLI(t, "run", "--out", out, "--retries", "0", mf)
	var r struct {
		Results []struct {
			Kernel, Arch, Check, Status, Message, Channel, Console string
			ErrorKind                                              string `json:"error_kind"`
		} `json:"results"`
	}
	runDir := readLatest(t, out, &r)
	// The noise reached the console: kernel records at KERN_EMERG and
	// text on the tty, around the frames.
	if len(r.Results) > 0 {
		con, err := os.ReadFile(filepath.Join(runDir, r.Results[0].Console))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"level 0 vmrunner console noise", "tty noise"} {
			if c := strings.Count(string(con), want); c < 10 {
				t.Errorf("console.log of %s holds %q %d times: was there noise?", r.Results[0].Kernel, want, c)
			}
		}
	}
	protocolErrors, passed := 0, 0
	for _, rec := range r.Results {
		switch {
		case rec.Status == "pass" && rec.Channel == "console":
			passed++
		case rec.ErrorKind == "protocol":
			protocolErrors++
			fallthrough
		default:
			t.Errorf("%s %s %s: %s/%s channel %q: %q", rec.Kernel, rec.Arch, rec.Check, rec.Status, rec.ErrorKind, rec.Channel, rec.Message)
		}
	}
	t.Logf("%d VMs under console noise in %s: %d records passed, %d protocol errors (run %s)", n, time.Since(start).Round(time.Second), passed, protocolErrors, runDir)
	if res.code != 0 || passed < 4*n {
		t.Errorf("exit %d with %d passes, want 0 and at least %d\n%s", res.code, passed, 4*n, res.stderr)
	}
}

// probesObject copies testdata/bpf/probes.o into dir (a matrix puts only
// files of its own directory into a VM) and returns its name there.
func probesObject(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/bpf/probes.o")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probes.o"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return "probes.o"
}
