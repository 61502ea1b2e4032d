package ci

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

const actionFile = "../action.yml"

type actionMeta struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Inputs      map[string]struct {
		Description string  `yaml:"description"`
		Required    bool    `yaml:"required"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string         `yaml:"using"`
		Steps []workflowStep `yaml:"steps"`
	} `yaml:"runs"`
}

func readAction(t *testing.T) actionMeta {
	t.Helper()
	b, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	var a actionMeta
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// scriptStep matches a shell step of the action: one script of
// scripts/action/, nothing else, so that it runs the same without GitHub.
var scriptStep = regexp.MustCompile(`^"\$GITHUB_ACTION_PATH/(scripts/action/[a-z]+\.sh)"\n?$`)

func TestActionMetadata(t *testing.T) {
	a := readAction(t)
	if a.Name == "" || a.Description == "" || a.Runs.Using != "composite" {
		t.Errorf("name %q, description %q, runs.using %q: want a named, described composite action", a.Name, a.Description, a.Runs.Using)
	}
	for _, in := range []string{"matrix", "kernel", "arch", "shard", "junit", "version"} {
		i, ok := a.Inputs[in]
		if !ok {
			t.Errorf("no input %q", in)
			continue
		}
		if i.Description == "" || i.Required || i.Default == nil {
			t.Errorf("input %q: want a description, optional, with a default", in)
		}
	}
	for _, out := range []string{"dir", "exit-code", "artifact"} {
		if a.Outputs[out].Value == "" {
			t.Errorf("no output %q", out)
		}
	}
	var scripts, uses []string
	for _, s := range a.Runs.Steps {
		switch {
		case s.Run != "":
			if s.Shell != "bash" {
				t.Errorf("step %q: shell %q, want bash (a composite action's run step names its shell)", s.Name, s.Shell)
			}
			m := scriptStep.FindStringSubmatch(s.Run)
			if m == nil {
				t.Errorf("step %q runs %q: want one script of scripts/action/, runnable without GitHub", s.Name, s.Run)
				continue
			}
			fi, err := os.Stat(filepath.Join("..", m[1]))
			if err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("step %q: %s missing or not executable: %v", s.Name, m[1], err)
			}
			scripts = append(scripts, m[1])
		case s.Uses != "":
			name, ver, ok := strings.Cut(s.Uses, "@")
			if !ok || !strings.HasPrefix(ver, "v") {
				t.Errorf("step %q uses %q: pin a version", s.Name, s.Uses)
			}
			uses = append(uses, name)
		}
	}
	if !slices.Equal(scripts, []string{"scripts/action/install.sh", "scripts/action/build.sh", "scripts/action/run.sh"}) {
		t.Errorf("scripts %v: want install, build, run", scripts)
	}
	for _, u := range []string{"actions/setup-go", "actions/cache", "actions/upload-artifact"} {
		if !slices.Contains(uses, u) {
			t.Errorf("the action does not use %s", u)
		}
	}
	var cache map[string]string
	for _, s := range a.Runs.Steps {
		if strings.HasPrefix(s.Uses, "actions/cache@") {
			cache = s.With
		}
	}
	if cache["path"] != "~/.cache/vmrunner" || !strings.Contains(cache["key"], "${{ inputs.shard }}") {
		t.Errorf("kernel cache %v: want ~/.cache/vmrunner keyed per shard", cache)
	}
	install, err := os.ReadFile("../scripts/action/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(install, []byte(`KERNEL=="kvm", GROUP="kvm", MODE="0666"`)) || !bytes.Contains(install, []byte("udevadm trigger --name-match=kvm")) {
		t.Error("install.sh does not open /dev/kvm to the runner user with a udev rule")
	}
}

// actionlint lints workflows, not an action's steps: the steps are linted
// as the steps of a workflow job whose workflow_dispatch inputs are the
// action's inputs (expressions, contexts, step outputs, the inputs of the
// well-known actions, and the scripts with shellcheck), and the outputs as
// the job's outputs.
func TestActionlintAction(t *testing.T) {
	b, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Inputs  map[string]map[string]any `yaml:"inputs"`
		Outputs map[string]map[string]any `yaml:"outputs"`
		Runs    struct {
			Steps []map[string]any `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{}
	for name, in := range raw.Inputs {
		inputs[name] = map[string]any{"description": in["description"], "required": false, "default": in["default"], "type": "string"}
	}
	outputs := map[string]any{}
	for name, out := range raw.Outputs {
		outputs[name] = out["value"]
	}
	wf := map[string]any{
		"name": "action.yml as a workflow",
		"on":   map[string]any{"workflow_dispatch": map[string]any{"inputs": inputs}},
		"jobs": map[string]any{"action": map[string]any{"runs-on": "ubuntu-24.04", "outputs": outputs, "steps": raw.Runs.Steps}},
	}
	content, err := yaml.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	opts := &actionlint.LinterOptions{Oneline: true}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = p
	}
	l, err := actionlint.NewLinter(&bytes.Buffer{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint("action.yml", content, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("action.yml (as a workflow) %d:%d: %s [%s]", e.Line, e.Column, e.Message, e.Kind)
	}
	// The guard: the same synthesis of a broken action is reported.
	broken := strings.Replace(string(content), "steps.build.outputs.bin", "steps.biuld.outputs.bin", 1)
	if broken == string(content) {
		t.Fatal("the synthesized workflow has no steps.build.outputs.bin to break")
	}
	errs, _ = l.Lint("broken.yml", []byte(broken), nil)
	if len(errs) == 0 {
		t.Error("actionlint found nothing wrong in a step output of a step that does not exist")
	}
}

// The scripts the action runs pass shellcheck (installed by
// scripts/install-test-deps.sh; skipped without it, except in CI).
func TestActionScriptsShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed: run scripts/install-test-deps.sh")
		}
		t.Skip("shellcheck is not installed (scripts/install-test-deps.sh installs it)")
	}
	scripts, err := filepath.Glob("../scripts/action/*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	out, err := exec.Command(sc, scripts...).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// A workflow that uses the action (`uses: ./`, as nightly.yml does) is
// checked against action.yml: an input the action does not have is an error.
func TestActionlintChecksActionInputs(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wf := "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./\n        with:\n          shards: 3\n"
	errs, err := l.Lint(filepath.Join(root, ".github/workflows/example.yml"), []byte(wf), proj)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range errs {
		found = found || strings.Contains(e.Message, `input "shards" is not defined`)
	}
	if !found {
		t.Errorf("actionlint did not check the inputs given to ./ against action.yml: %v", errs)
	}
}
