package ci

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

const workflows = "../.github/workflows"

// TestActionlint lints every workflow: syntax, expressions and contexts,
// inputs of the well-known actions, cron schedules; and the run: scripts with
// shellcheck when it is installed.
func TestActionlint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(workflows, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in %s: %v", workflows, err)
	}
	opts := &actionlint.LinterOptions{Oneline: true}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = p
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		errs, err := l.LintFile(f, nil)
		if err != nil {
			t.Fatalf("lint %s: %v", f, err)
		}
		for _, e := range errs {
			t.Errorf("%s:%d:%d: %s [%s]", f, e.Line, e.Column, e.Message, e.Kind)
		}
	}
}

// What actionlint does not know: that the nightly job does what it is for.
func TestNightlyWorkflow(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(workflows, "nightly.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On   map[string]yaml.Node `yaml:"on"`
		Jobs map[string]struct {
			Steps []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"schedule", "workflow_dispatch"} {
		if _, ok := wf.On[ev]; !ok {
			t.Errorf("nightly does not run on %s", ev)
		}
	}
	job, ok := wf.Jobs["matrix"]
	if !ok {
		t.Fatal("no job named matrix")
	}
	var runs []string
	uses := map[string]map[string]string{}
	for _, s := range job.Steps {
		runs = append(runs, s.Run)
		if s.Uses != "" {
			name, _, _ := strings.Cut(s.Uses, "@")
			uses[name] = s.With
		}
	}
	script := strings.Join(runs, "\n")
	tests := []struct {
		what string
		ok   bool
	}{
		{"/dev/kvm opened to the runner user by a udev rule", strings.Contains(script, `KERNEL=="kvm", GROUP="kvm", MODE="0666"`) && strings.Contains(script, "udevadm trigger --name-match=kvm")},
		{"Go from go.mod", uses["actions/setup-go"]["go-version-file"] == "go.mod"},
		{"the kernel cache cached", uses["actions/cache"]["path"] == "~/.cache/vmrunner"},
		{"make run with --junit", strings.Contains(script, "make run") && strings.Contains(script, "--junit junit.xml")},
		{"the run directory uploaded", uses["actions/upload-artifact"]["name"] == "vmrunner-results"},
		{"JUnit published", uses["mikepenz/action-junit-report"]["report_paths"] == "junit.xml"},
		{"the previous results downloaded", uses["dawidd6/action-download-artifact"]["name"] == "vmrunner-results"},
		{"compared with the previous night", strings.Contains(script, "vmrunner report compare previous")},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("nightly.yml: missing: %s", tt.what)
		}
	}
}

// The linter as configured above does find mistakes: a guard against a
// setup that lints nothing.
func TestActionlintFindsMistakes(t *testing.T) {
	tests := []struct{ name, yml, want string }{
		{"bad cron", "on:\n  schedule:\n    - cron: '61 3 * * *'\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: true\n", "invalid CRON format"},
		{"unknown input", "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/cache@v4\n        with:\n          pth: x\n          key: k\n", "pth"},
		{"unknown step output", "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ steps.nope.outputs.x }}\n", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			errs, err := l.Lint("bad.yml", []byte(tt.yml), nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Message, tt.want)
			}
			if !found {
				t.Errorf("actionlint did not report %q: %v", tt.want, errs)
			}
		})
	}
}
