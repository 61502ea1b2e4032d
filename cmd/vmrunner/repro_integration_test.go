package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
)

// TestRepro loads single programs of the shipped probes on one VM and checks
// the exit code and the verifier log printed on stdout.
func TestRepro(t *testing.T) {
	integration(t)
	out := t.TempDir()
	for _, tc := range []struct {
		name, kernel, arch, program string
		code                        int
		stdout                      []string
	}{
		// The rejecting instruction and the verifier's reason.
		{"rejected", "6.12", "arm64", "rejected_stack_oob", 1, []string{"0: (79) r0 = *(u64 *)(r10 +8)", "invalid read from stack R10 off=8 size=8", "processed 1 insns"}},
		// bpf_loop's callback is a BPF_PSEUDO_FUNC, unknown before 5.13.
		{"too old", "5.10", "x86_64", "uses_bpf_loop", 1, []string{"number of funcs in func_info doesn't match number of subprogs"}},
		// Loaded: the full instruction-level log, down to the statistics.
		{"loaded", "6.1", "x86_64", "uses_bpf_loop", 0, []string{"call bpf_loop#181", "processed 20 insns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := vmrunnerCLI(t, "repro", "--matrix", "../../matrix.yaml", "--kernel", tc.kernel, "--arch", tc.arch,
				"--object", "../../testdata/bpf/probes.o", "--program", tc.program, "--out", out)
			if res.code != tc.code {
				t.Errorf("exit code %d, want %d", res.code, tc.code)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("stdout does not contain %q", want)
				}
			}
			if !strings.Contains(res.stderr, "verifier/probes/"+tc.program+" on "+tc.kernel+"/"+tc.arch) {
				t.Errorf("stderr does not name the result")
			}
		})
	}

	// The log is saved under the run directory too.
	logs, _ := filepath.Glob(filepath.Join(out, "*", "6.12-arm64", "verifier", "probes", "rejected_stack_oob.log"))
	if len(logs) != 1 {
		t.Errorf("saved logs: %v", logs)
	}
	// Its report.html, like a run's, shows the rejected program's cell and
	// links the saved log.
	if len(logs) == 1 {
		page, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(logs[0])))), "report.html"))
		if err != nil {
			t.Errorf("repro run directory: %v", err)
		}
		for _, want := range []string{"verifier/probes/rejected_stack_oob", `href="6.12-arm64/verifier/probes/rejected_stack_oob.log"`} {
			if !strings.Contains(string(page), want) {
				t.Errorf("report.html does not contain %q", want)
			}
		}
	}

	for _, args := range [][]string{
		{"--object", "../../testdata/bpf/probes.c"},
		{"--object", "../../testdata/bpf/probes.o", "--program", "nope"},
		{"--object", "../../testdata/bpf/missing.o"},
		{"--object", "../../testdata/bpf/probes.o", "--kernel", "4.2"},
	} {
		res := vmrunnerCLI(t, append([]string{"repro", "--matrix", "../../matrix.yaml", "--kernel", "6.1", "--arch", "x86_64", "--out", out}, args...)...)
		if res.code != 2 || strings.Count(strings.TrimSpace(res.stderr), "\n") > 0 {
			t.Errorf("%v: exit %d with %q, want 2 and one line", args, res.code, res.stderr)
		}
	}
}

// TestReproShell drives `vmrunner repro --shell` in a tmux pane: a command
// typed into the guest's shell prints its output, and leaving the shell
// ends the VM and vmrunner. It does so on a kernel with a virtio console
// and on one without (noVirtioConsoleKernel): in a shell the agent runs
// no plan and opens no channel, so the serial console is the shell's
// alone there too — no frame ever reaches the terminal.
func TestReproShell(t *testing.T) {
	integration(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux not installed: run `make install-deps`")
	}
	dir := t.TempDir()
	noVcon := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(noVcon, []byte("kernels:\n"+noVirtioConsoleKernel(t, dir, kernels.X86_64)+"checks: [btf]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, matrix, kernel string }{
		{"virtio-serial", "../../matrix.yaml", "6.1"},
		{"console", noVcon, "no-vcon-x86_64"},
	} {
		t.Run(tc.name, func(t *testing.T) { reproShell(t, tc.matrix, tc.kernel, "vmrunner-shell-test-"+tc.name) })
	}
}

func reproShell(t *testing.T, matrix, kernel, session string) {
	toolsDir := filepath.Join(binDir, "vmrunner-tools-x86_64")
	for _, tool := range []string{"gosh", "ls", "cat", "dmesg", "mount", "ip"} {
		if _, err := os.Stat(filepath.Join(toolsDir, tool)); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(toolsDir, tool), "github.com/u-root/u-root/cmds/core/"+tool)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", tool, err, out)
		}
	}

	done := filepath.Join(t.TempDir(), "exit-code")
	// A tmux server of this test's own: a concurrent run of the test
	// elsewhere neither sees nor kills its session.
	sock := filepath.Join(t.TempDir(), "tmux")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	shell := strings.Join([]string{filepath.Join(binDir, "vmrunner"), "repro", "--matrix", matrix, "--kernel", kernel,
		"--arch", "x86_64", "--object", "../../testdata/bpf/probes.o", "--shell", "--out", t.TempDir()}, " ")
	tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", shell+"; echo $? > "+done+"; sleep 600")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })

	waitPaneFor := func(want string, seen func(pane string) bool) string {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			pane := tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session)
			if seen(pane) {
				return pane
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the pane:\n%s", want, pane)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPane := func(want string) string {
		t.Helper()
		return waitPaneFor(want, func(pane string) bool { return strings.Contains(pane, want) })
	}
	waitPane("leave it (exit or Ctrl-D) to power the VM off")
	// Keys typed before gosh's line editor put the terminal in raw mode
	// could be flushed: wait for the editor to draw its key help.
	waitPaneFor("the line editor", func(pane string) bool {
		_, after, _ := strings.Cut(pane, "leave it (exit or Ctrl-D)")
		return strings.Contains(after, "C-d erase/stop")
	})
	tmux("send-keys", "-t", session, "echo hello-$((6*7)); cat /proc/version; ls /vmrunner/objects; ls /sys/class/virtio-ports; echo listed-$((2*3))", "Enter")
	for _, want := range []string{"hello-42", "Linux version 6.1.", "probes.o", "listed-6"} {
		waitPane(want)
	}
	pane := waitPane("listed-6")
	if strings.Contains(pane, "=vmrunner1=") {
		t.Errorf("a protocol frame reached the shell's terminal:\n%s", pane)
	}
	// The kernel is the one asked for: with no virtio console driver, no
	// virtio-ports class; with one, the agent's port is there.
	_, listing, _ := strings.Cut(pane, "probes.o")
	if noPorts := strings.Contains(listing, "no such file or directory"); noPorts != strings.HasPrefix(kernel, "no-vcon") {
		t.Errorf("kernel %s: /sys/class/virtio-ports missing = %v:\n%s", kernel, noPorts, pane)
	}
	tmux("send-keys", "-t", session, "exit", "Enter")
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := os.ReadFile(done)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if code := strings.TrimSpace(string(b)); code != "0" {
				t.Errorf("vmrunner repro --shell exited %s, want 0", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vmrunner did not exit after the shell did:\n%s", tmux("capture-pane", "-p", "-t", session))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(waitPane("reboot: Power down"), "shell exited") {
		t.Error("the agent did not report the shell's exit")
	}
}
