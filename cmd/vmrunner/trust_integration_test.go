package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecForger: a program under test that takes the agent's channel
// (pidfd_open(1) + pidfd_getfd, or the port's device) to write a passing
// result and a done for itself, then exits 1, gets its own verdict: it runs
// without CAP_SYS_PTRACE, so the agent's descriptors are out of its reach,
// and with no device node of the channel (issue 20, item 1). Before the
// sandbox the forger took PID 1's /dev/vport0p1 and exec exited 0.
func TestExecForger(t *testing.T) {
	integration(t)
	forger := filepath.Join(t.TempDir(), "forger")
	build := exec.Command("go", "build", "-o", forger, "./testdata/forger")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build forger: %v\n%s", err, out)
	}
	out := t.TempDir()
	res := vmrunnerCLI(t, "exec", "--kernel", "6.1", "--out", out, "--", forger)
	if res.code != 1 {
		t.Errorf("exit %d, want the forger's own 1", res.code)
	}
	if strings.Contains(res.stderr, "forger: forged a pass") {
		t.Errorf("the forger reached a channel")
	}
	// It did try: PID 1 is the agent, whose descriptors it may not take,
	// and no channel device exists.
	for _, want := range []string{"forger: pidfd_getfd on PID 1: operation not permitted", "forger: open /dev/vport0p1: open /dev/vport0p1: no such file or directory", "forger: no channel to forge on"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	var r resultsFile
	readLatest(t, out, &r)
	seen := false
	for _, rec := range r.Results {
		seen = seen || rec.Check == "test/forger"
		if want := map[bool]string{true: "fail", false: "pass"}[rec.Check == "test/forger"]; rec.Status != want {
			t.Errorf("%s: %s %s, want %s", rec.Check, rec.Status, rec.Message, want)
		}
	}
	if !seen || r.Run.ExitCode != 1 {
		t.Errorf("results.json: test/forger recorded %t, exit code %d; want its record and 1", seen, r.Run.ExitCode)
	}
}
