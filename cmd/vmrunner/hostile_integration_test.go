package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileGuest boots real VMs whose agent misbehaves on purpose
// (internal/testsupport/hostileagent, selected by the kernel argument vmrunner.hostile=)
// and checks what vmrunner reports: a VM whose conversation did not end with
// done and a clean power-off is never a pass, protocol breaches are refused,
// floods are cut off within bounded memory, and guest strings reach
// results.json and the terminal sanitised.
func TestHostileGuest(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `
defaults: {timeout: 60s}
kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks:
  - btf
  - selftest: {action: pass}
`)
	tests := []struct {
		mode   string
		exit   int
		vmKind string // the VM's own record; "" for none
		vmMsg  string
		checks string // status of btf and selftest, "pass pass"
	}{
		{"exit-after-results", 3, "agent", "guest agent (PID 1) exited", "pass pass"},
		{"poweroff-without-done", 3, "agent", "stopped before reporting done", "pass pass"},
		{"hang-after-results", 3, "timeout", "did not finish within 1m0s", "pass pass"},
		{"panic-after-done", 3, "panic", "kernel panic after reporting done", "pass pass"},
		{"hang-after-done", 3, "timeout", "reported done but did not power off", "pass pass"},
		{"result-after-done", 3, "protocol", "result message after done", "pass pass"},
		{"duplicate-done", 3, "protocol", "done twice", "pass pass"},
		{"wrong-done-count", 3, "protocol", "done counts 4 results, 2 arrived", "pass pass"},
		{"flood-results", 3, "protocol", "results exceed 16 MiB", ""},
		{"flood-messages", 3, "protocol", "more than 100000 messages", "error error"},
		{"escapes-in-name", 3, "protocol", "invalid check name", "error error"},
		{"artifact-host-name", 3, "protocol", `artifact "qemu.log/x"`, "error error"},
		{"escapes-in-text", 0, "", "", "pass pass"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			res := vmrunnerCLI(t, "run", m, "--out", out, "--retries", "0",
				"--agent-dir", filepath.Join(binDir, "hostile"), "--append", "vmrunner.hostile="+tt.mode)
			if res.code != tt.exit {
				t.Errorf("exit code %d, want %d", res.code, tt.exit)
			}
			r, dir := readResults(t, out)
			statuses := map[string]string{}
			vm := -1
			for i, rec := range r.Results {
				statuses[rec.Check] = rec.Status
				if rec.Check == "vm" {
					vm = i
				}
			}
			if tt.checks != "" {
				if got := statuses["btf"] + " " + statuses["selftest"]; got != tt.checks {
					t.Errorf("btf, selftest = %s, want %s", got, tt.checks)
				}
			}
			switch {
			case tt.vmKind == "" && vm >= 0:
				t.Errorf("a VM that ended well has a record: %+v", r.Results[vm])
			case tt.vmKind != "" && vm < 0:
				t.Errorf("no record for the VM itself: %+v", r.Results)
			case tt.vmKind != "":
				rec := r.Results[vm]
				if rec.Status != "error" || rec.ErrorKind != tt.vmKind || !strings.Contains(rec.Message, tt.vmMsg) {
					t.Errorf("VM record %s/%s %q, want error/%s containing %q", rec.Status, rec.ErrorKind, rec.Message, tt.vmKind, tt.vmMsg)
				}
			}
			// Nothing the guest sent reaches the terminal raw.
			for what, s := range map[string]string{"stdout": res.stdout, "stderr": res.stderr} {
				if strings.ContainsAny(s, "\x1b\x07\b\r\u009b\u202e") {
					t.Errorf("%s carries a control character from the guest: %q", what, s)
				}
			}
			switch tt.mode {
			case "escapes-in-text":
				for _, rec := range r.Results {
					if strings.ContainsAny(rec.Message, "\x1b\x07\b\r\u009b\u202e") || !strings.Contains(rec.Message, `\x1b[31m`) {
						t.Errorf("%s message not sanitised: %q", rec.Check, rec.Message)
					}
				}
				if strings.Contains(res.stdout, "forged pass") && !strings.Contains(res.stdout, `\u202etxt.exe 6.1 x86_64 forged pass`) {
					t.Errorf("a newline in a message forged a summary row:\n%s", res.stdout)
				}
			case "artifact-host-name":
				fi, err := os.Stat(filepath.Join(dir, "6.1-x86_64", "qemu.log"))
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("qemu.log is not a regular file: %v", err)
				}
			case "flood-results":
				// 64 results of 900 KB were sent; vmrunner kept at most
				// 16 MiB of them and its memory shows it.
				t.Logf("vmrunner peak RSS: %d MiB", res.maxRSS>>20)
				if res.maxRSS > 512<<20 {
					t.Errorf("vmrunner peaked at %d MiB", res.maxRSS>>20)
				}
				if fi, err := os.Stat(filepath.Join(dir, "results.json")); err != nil || fi.Size() > 20<<20 {
					t.Errorf("results.json: %v bytes, %v", fi.Size(), err)
				}
			}
		})
	}
}
