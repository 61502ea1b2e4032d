package ci

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// workflowStep is a step of a workflow job or of a composite action.
type workflowStep struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	With  map[string]string `yaml:"with"`
	Env   map[string]string `yaml:"env"`
}

// steps indexes steps by what they use (without the version) and joins
// their scripts.
func steps(ss []workflowStep) (uses map[string]map[string]string, script string) {
	uses = map[string]map[string]string{}
	var runs []string
	for _, s := range ss {
		runs = append(runs, s.Run)
		if s.Uses != "" {
			name, _, _ := strings.Cut(s.Uses, "@")
			uses[name] = s.With
		}
	}
	return uses, strings.Join(runs, "\n")
}

// What actionlint does not know: that the nightly jobs do what they are for,
// plan → shards → merge.
func TestNightlyWorkflow(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(workflows, "nightly.yml"))
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		Needs    yaml.Node      `yaml:"needs"`
		If       string         `yaml:"if"`
		RunsOn   string         `yaml:"runs-on"`
		Strategy map[string]any `yaml:"strategy"`
		Steps    []workflowStep `yaml:"steps"`
	}
	var wf struct {
		On   map[string]yaml.Node `yaml:"on"`
		Jobs map[string]job       `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"schedule", "workflow_dispatch"} {
		if _, ok := wf.On[ev]; !ok {
			t.Errorf("nightly does not run on %s", ev)
		}
	}
	for _, name := range []string{"plan", "shards", "merge"} {
		if _, ok := wf.Jobs[name]; !ok {
			t.Fatalf("no job named %s", name)
		}
	}
	planUses, planScript := steps(wf.Jobs["plan"].Steps)
	shards := wf.Jobs["shards"]
	shardUses, _ := steps(shards.Steps)
	merge := wf.Jobs["merge"]
	mergeUses, mergeScript := steps(merge.Steps)
	var mergeNeeds []string
	_ = merge.Needs.Decode(&mergeNeeds)
	site := wf.Jobs["site"]
	siteUses, siteScript := steps(site.Steps)
	action := shardUses["./"]

	tests := []struct {
		what string
		ok   bool
	}{
		{"plan: the previous night's results downloaded", planUses["dawidd6/action-download-artifact"]["name"] == "vmrunner-results"},
		{"plan: vmrunner plan --format github balanced by them", strings.Contains(planScript, "plan \"$MATRIX\" --shards") &&
			strings.Contains(planScript, "--format github") && strings.Contains(planScript, "--timings previous/results.json")},
		{"plan: the timings handed to the shards", planUses["actions/upload-artifact"]["name"] == "vmrunner-timings"},
		{"shards: one job per plan entry", shards.Strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"},
		{"shards: on the runner the plan says", shards.RunsOn == "${{ matrix.runner }}"},
		{"shards: not cancelled by one failing", shards.Strategy["fail-fast"] == false},
		{"shards: the repository's own action runs the shard", action != nil && action["shard"] == "${{ matrix.shard }}" && action["plan-hash"] == "${{ matrix.plan }}"},
		{"shards: with the timings the plan used", action != nil && strings.Contains(action["timings"], "timings/results.json") &&
			shardUses["actions/download-artifact"]["name"] == "vmrunner-timings"},
		{"shards: JUnit written", action != nil && action["junit"] == "junit.xml"},
		{"shards: this commit's vmrunner, built from source", action != nil && action["version"] == "source"},
		{"merge: after the shards, whatever they did", slices.Contains(mergeNeeds, "shards") && strings.Contains(merge.If, "always()")},
		{"merge: every shard downloaded", mergeUses["actions/download-artifact"]["pattern"] == "vmrunner-shard-*"},
		{"merge: report merge, a missing shard as errors", strings.Contains(mergeScript, "report merge merged shards/*/ --allow-partial --junit junit.xml")},
		{"merge: the merged run uploaded", mergeUses["actions/upload-artifact"]["name"] == "vmrunner-results"},
		{"merge: JUnit published", mergeUses["mikepenz/action-junit-report"]["report_paths"] == "junit.xml"},
		{"merge: compared with the previous night", mergeUses["dawidd6/action-download-artifact"]["name"] == "vmrunner-results" &&
			strings.Contains(mergeScript, "vmrunner report compare previous merged")},
		{"site: after the merge, whatever it found", site.Needs.Value == "merge" && strings.Contains(site.If, "always()")},
		{"site: tonight's merged run downloaded", siteUses["actions/download-artifact"]["name"] == "vmrunner-results"},
		{"site: built from the gh-pages nights and tonight's, the last KEEP_NIGHTS", strings.Contains(siteScript, "git fetch --depth 1 origin gh-pages") &&
			strings.Contains(siteScript, `nights=(pages/nights/*/)`) && strings.Contains(siteScript, `vmrunner report site site "${nights[@]}" tonight`) &&
			strings.Contains(siteScript, `--keep "$KEEP_NIGHTS"`)},
		{"site: pushed to gh-pages as one commit", strings.Contains(siteScript, "git init -q -b gh-pages") && strings.Contains(siteScript, "git push -q --force") &&
			strings.Contains(siteScript, "gh-pages\n")},
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

// What actionlint does not know: that a tag builds with the script the
// integration test runs, attests provenance and publishes every file.
func TestReleaseWorkflow(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(workflows, "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On   map[string]map[string][]string `yaml:"on"`
		Jobs map[string]struct {
			Permissions map[string]string `yaml:"permissions"`
			Steps       []workflowStep    `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	job := wf.Jobs["release"]
	uses, script := steps(job.Steps)
	files := []string{"dist/vmrunner-linux-amd64.tar.gz", "dist/vmrunner-linux-arm64.tar.gz", "dist/vmrunner.spdx.json"}
	attest := uses["actions/attest-build-provenance"]["subject-path"]
	tests := []struct {
		what string
		ok   bool
	}{
		{"on a tag v*", slices.Equal(wf.On["push"]["tags"], []string{"v*"})},
		{"built by scripts/release.sh, checksums verified", strings.Contains(script, `scripts/release.sh "$GITHUB_REF_NAME" dist`) && strings.Contains(script, "sha256sum -c SHA256SUMS")},
		{"provenance attested for the archives and the SBOM", !slices.ContainsFunc(files, func(f string) bool { return !strings.Contains(attest, f) })},
		{"permissions to attest and release", job.Permissions["id-token"] == "write" && job.Permissions["attestations"] == "write" && job.Permissions["contents"] == "write"},
		{"published with the notes and every file", strings.Contains(script, "gh release create") && strings.Contains(script, "--notes-file dist/NOTES.md") &&
			!slices.ContainsFunc(append(files, "dist/SHA256SUMS"), func(f string) bool { return !strings.Contains(script, f) })},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("release.yml: missing: %s", tt.what)
		}
	}
}
