package ci

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestActionScripts runs the action's shell steps as a job would, without
// GitHub: install (QEMU present: nothing to do; no /dev/kvm here: kvm=false),
// build into a temporary directory, then run on a tiny matrix (Debian 6.1
// x86_64, the btf check) as shard 1/1 with JUnit, reading the outputs back
// from $GITHUB_OUTPUT; then a bad input, whose exit code must come through.
// It boots one VM.
func TestActionScripts(t *testing.T) {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	matrix := filepath.Join(work, "matrix.yaml")
	if err := os.WriteFile(matrix, []byte(`kernels:
  - {name: "6.1", arch: x86_64, source: {debian: {suite: bookworm}}}
checks:
  - btf: {require: [task_struct]}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	step := func(script string, env ...string) (int, map[string]string) {
		t.Helper()
		outputs := filepath.Join(t.TempDir(), "github_output")
		cmd := exec.Command(filepath.Join(root, "scripts/action", script))
		cmd.Dir = work
		cmd.Env = append(os.Environ(), append(env, "GITHUB_OUTPUT="+outputs)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		t.Logf("%s %v → exit %d in %s\n%s", script, env, code, time.Since(start).Round(100*time.Millisecond), out.String())
		got := map[string]string{}
		b, _ := os.ReadFile(outputs)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				got[k] = v
			}
		}
		return code, got
	}

	code, out := step("install.sh")
	if code != 0 || (out["kvm"] != "true" && out["kvm"] != "false") {
		t.Fatalf("install.sh: exit %d, outputs %v", code, out)
	}
	_, kvmErr := os.Stat("/dev/kvm")
	if out["kvm"] == "true" && kvmErr != nil {
		t.Errorf("install.sh says kvm=true without /dev/kvm")
	}

	bin := filepath.Join(work, "bin")
	code, out = step("build.sh", "BIN="+bin, "VERSION=source")
	if code != 0 || out["bin"] != bin || out["version"] == "" {
		t.Fatalf("build.sh: exit %d, outputs %v", code, out)
	}
	for _, f := range []string{"vmrunner", "vmrunner-agent-x86_64", "vmrunner-agent-arm64"} {
		if _, err := os.Stat(filepath.Join(bin, f)); err != nil {
			t.Errorf("build.sh did not build %s: %v", f, err)
		}
	}

	vmrunner := filepath.Join(bin, "vmrunner")
	code, out = step("run.sh", "VMRUNNER="+vmrunner, "MATRIX="+matrix, "KERNEL=6.1", "ARCH=x86_64", "SHARD=1/1", "JUNIT=junit.xml", "ARGS=--retries 2")
	if code != 0 || out["exit-code"] != "0" || out["artifact"] != "vmrunner-shard-1-of-1" || out["dir"] == "" {
		t.Fatalf("run.sh: exit %d, outputs %v", code, out)
	}
	var rep struct {
		Run struct {
			Shard struct {
				Index, Count int
				Plan         string
			} `json:"shard"`
		} `json:"run"`
		Results []struct {
			Kernel, Arch, Check, Status string
		} `json:"results"`
	}
	b, err := os.ReadFile(filepath.Join(out["dir"], "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Check != "btf" || rep.Results[0].Status != "pass" || rep.Results[0].Kernel != "6.1" {
		t.Errorf("results: %+v", rep.Results)
	}
	if s := rep.Run.Shard; s.Index != 1 || s.Count != 1 || len(s.Plan) != 64 {
		t.Errorf("run.shard: %+v", s)
	}
	for _, f := range []string{"junit.xml", "report.html", "6.1-x86_64/console.log"} {
		if fi, err := os.Stat(filepath.Join(out["dir"], f)); err != nil || fi.Size() == 0 {
			t.Errorf("the run directory lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "junit.xml")); err != nil {
		t.Errorf("junit.xml not written where asked: %v", err)
	}

	// Bad input: vmrunner's exit code is the step's, and no run to upload.
	code, out = step("run.sh", "VMRUNNER="+vmrunner, "MATRIX="+matrix, "KERNEL=4.19", "OUT="+filepath.Join(work, "bad"))
	if code != 2 || out["exit-code"] != "2" || out["dir"] != "" || out["artifact"] != "vmrunner-results" {
		t.Errorf("run.sh with an unknown kernel: exit %d, outputs %v; want 2 and no dir", code, out)
	}
}

// TestActionBuildsAVersion builds the action's `version` input path: a clone
// of the repository at a commit (here the local repository's HEAD, as
// VMRUNNER_REPO), whose `vmrunner version` names it.
func TestActionBuildsAVersion(t *testing.T) {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	commit := strings.TrimSpace(string(head))
	bin := filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command(filepath.Join(root, "scripts/action/build.sh"))
	cmd.Env = append(os.Environ(), "BIN="+bin, "VERSION="+commit, "VMRUNNER_REPO="+root, "GITHUB_OUTPUT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh VERSION=%s: %v\n%s", commit, err, out)
	}
	v, err := exec.Command(filepath.Join(bin, "vmrunner"), "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "vmrunner "+commit {
		t.Errorf("vmrunner version = %q, %v; want vmrunner %s", v, err, commit)
	}
}
