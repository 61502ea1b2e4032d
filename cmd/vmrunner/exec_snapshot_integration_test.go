package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// execBoot runs `vmrunner exec` with args, keeping its results, and returns
// the CLI's result and how the VM started (the record's boot).
func execBoot(t *testing.T, args ...string) (cliResult, string) {
	t.Helper()
	out := t.TempDir()
	res := vmrunnerCLI(t, append([]string{"exec", "--out", out}, args...)...)
	recs := snapshotRecords(t, out)
	if len(recs) == 0 {
		t.Fatalf("no records in %s", out)
	}
	return res, recs[0].Boot
}

// elapsed are the durations go test prints, which differ run to run.
var elapsed = regexp.MustCompile(`\([0-9.]+s\)|\t[0-9.]+s$`)

// TestExecSnapshot: vmrunner exec restores its VM from the snapshot `run`
// uses and sends the program, its libraries and its directory over the
// channel: a real Go test binary gives the same output and exit status
// restored as booted (with --no-snapshot: a per-run archive), and a
// rebuilt program is the one that runs, never a stale copy.
func TestExecSnapshot(t *testing.T) {
	integration(t)
	bin := filepath.Join(t.TempDir(), "goequiv.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = goequivDir
	build.Env = append(os.Environ(), "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	args := []string{"--kernel", "6.1", "--dir", goequivDir, "--", bin, "-test.v", "-test.run", "TestPass|TestFail|TestSkip|TestTestdata|TestSubtests"}
	booted, boot := execBoot(t, append([]string{"--no-snapshot"}, args...)...)
	if boot != "cold" || booted.code != 1 || !strings.Contains(booted.stdout, "--- PASS: TestTestdata") {
		t.Fatalf("--no-snapshot: boot %q, exit %d; want a cold boot, exit 1 and TestTestdata passing", boot, booted.code)
	}
	// The first run with snapshots may boot and save; the next restores.
	restored, boot := execBoot(t, args...)
	if boot != "snapshot" {
		restored, boot = execBoot(t, args...)
	}
	if boot != "snapshot" {
		t.Fatalf("boot %q after a run that saved the snapshot, want snapshot", boot)
	}
	if restored.code != booted.code {
		t.Errorf("exit %d restored, %d booted", restored.code, booted.code)
	}
	if r, b := elapsed.ReplaceAllString(restored.stdout, ""), elapsed.ReplaceAllString(booted.stdout, ""); r != b {
		t.Errorf("restored output differs from booted:\n%s\nbooted:\n%s", r, b)
	}

	// The same path, another build: the restored VM runs the new one.
	src := filepath.Join(t.TempDir(), "main.go")
	write(t, src, "package main\n\nvar version string\n\nfunc main() { println(\"built as\", version) }\n")
	prog := filepath.Join(t.TempDir(), "versioned")
	for _, v := range []string{"first", "second"} {
		build := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", prog, src)
		build.Env = append(os.Environ(), "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		res, boot := execBoot(t, "--kernel", "6.1", "--no-dir", "--", prog)
		if res.code != 0 || !strings.Contains(res.stderr, "built as "+v) || boot != "snapshot" {
			t.Errorf("build %s: exit %d, boot %q, stderr %q; want it restored, printing its own version", v, res.code, boot, res.stderr)
		}
	}
}

// TestTestCheckRestored: a matrix's test check runs in a VM restored from
// the snapshot a btf run of the same kernel and arch saved: its program and
// directory do not enter the snapshot's key.
func TestTestCheckRestored(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "goequiv.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = goequivDir
	build.Env = append(os.Environ(), "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	kernel := `kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
`
	btf, test := filepath.Join(dir, "btf.yaml"), filepath.Join(dir, "test.yaml")
	write(t, btf, kernel+"checks:\n  - btf: {}\n")
	write(t, test, kernel+"checks:\n  - test: {binary: ./goequiv.test, format: go, dir: "+goequivDir+`, args: ["-test.run", "TestPass|TestTestdata"]}`+"\n")
	// The first btf run may boot and save; the second is restored, so
	// the snapshot is there.
	for range 2 {
		if res := vmrunnerCLI(t, "run", btf, "--out", t.TempDir()); res.code != 0 {
			t.Fatalf("btf run: exit %d", res.code)
		}
	}
	out := t.TempDir()
	if res := vmrunnerCLI(t, "run", test, "--out", out); res.code != 0 {
		t.Fatalf("test check: exit %d, want 0", res.code)
	}
	passed := 0
	for _, r := range snapshotRecords(t, out) {
		if r.Boot != "snapshot" {
			t.Errorf("%s: boot %q, want snapshot (the btf run's)", r.Check, r.Boot)
		}
		if strings.HasPrefix(r.Check, "test/goequiv.test/") && r.Status == "pass" {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("%d tests passed, want TestPass and TestTestdata", passed)
	}
}
