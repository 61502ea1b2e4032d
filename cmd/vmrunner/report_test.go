package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// writeRun writes a run directory holding results.json with one btf record
// per target, of the given statuses.
func writeRun(t *testing.T, id string, statuses map[string]protocol.Status) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	os.MkdirAll(dir, 0o755)
	rep := results.Report{Run: results.RunInfo{ID: id, Accel: "auto", Host: "host", Finished: true}}
	for _, k := range []string{"5.10", "6.1"} {
		st := statuses[k]
		if st == "" {
			st = protocol.StatusPass
		}
		rep.Results = append(rep.Results, results.Record{Kernel: k, Arch: "x86_64", KernelRelease: k + ".0-1-amd64",
			Check: "btf", Status: st, Message: "btf " + string(st), DurationMS: 800,
			Details: json.RawMessage(`{"types":100000}`), Console: k + "-x86_64/console.log"})
	}
	b, _ := json.Marshal(rep)
	os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644)
	return dir
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	code := exitCode(cmd.Execute())
	return code, out.String()
}

func TestReportCommands(t *testing.T) {
	pass := writeRun(t, "r-pass", nil)
	fail := writeRun(t, "r-fail", map[string]protocol.Status{"6.1": protocol.StatusFail})
	empty := filepath.Join(t.TempDir(), "results.json")
	os.WriteFile(empty, []byte(`{"run":{"id":"x"},"results":[]}`), 0o644)
	// vmrunner killed while 6.12 was still booting: its record is missing.
	killed := writeRun(t, "r-killed", nil)
	rep, err := results.ReadReport(filepath.Join(killed, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	rep.Run.Finished = false
	rep.Run.Targets = []results.Target{{Kernel: "5.10", Arch: "x86_64"}, {Kernel: "6.1", Arch: "x86_64"}, {Kernel: "6.12", Arch: "x86_64"}}
	b, _ := json.Marshal(rep)
	os.WriteFile(filepath.Join(killed, "results.json"), b, 0o644)
	// Killed before the first VM finished.
	early := filepath.Join(t.TempDir(), "results.json")
	os.WriteFile(early, []byte(`{"run":{"id":"x","targets":[{"kernel":"6.1","arch":"x86_64"}]},"results":[]}`), 0o644)
	broken := filepath.Join(t.TempDir(), "results.json")
	os.WriteFile(broken, []byte(`{"run":`), 0o644)
	out := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"compare same", []string{"report", "compare", pass, filepath.Join(pass, "results.json")}, 0, []string{"no changes", "regressions: 0"}},
		{"verifier without results", []string{"report", "verifier", pass}, 2, nil},
		{"verifier bad sort", []string{"report", "verifier", pass, "--sort", "speed"}, 2, nil},
		{"verifier growth without OLD", []string{"report", "verifier", pass, "--growth-budget", "20%"}, 2, nil},
		{"compare regression", []string{"report", "compare", pass, fail}, 1, []string{"6.1/x86_64 btf: pass → fail MISSING_BTF  REGRESSION", "regressions: 1"}},
		{"compare improvement", []string{"report", "compare", fail, pass}, 0, []string{"6.1/x86_64 btf: fail MISSING_BTF → pass", "regressions: 0"}},
		{"compare threshold", []string{"report", "compare", "--threshold", "1%", pass, pass}, 0, []string{"threshold: 1%"}},
		{"compare bad threshold", []string{"report", "compare", "--threshold", "lots", pass, fail}, 2, nil},
		{"compare missing", []string{"report", "compare", pass, filepath.Join(out, "nope")}, 2, nil},
		{"compare empty", []string{"report", "compare", pass, empty}, 2, nil},
		{"compare broken", []string{"report", "compare", pass, broken}, 2, nil},
		{"compare one arg", []string{"report", "compare", pass}, 2, nil},
		{"show", []string{"report", "show", fail}, 0, []string{"run r-fail", "KERNEL", "6.1.0-1-amd64", "checks: 1 pass, 1 fail, 0 error, 0 skip"}},
		{"write nothing", []string{"report", "write", fail}, 2, nil},
		{"write into a missing dir", []string{"report", "write", fail, "--junit", filepath.Join(out, "no", "j.xml")}, 2, nil},
		{"write", []string{"report", "write", fail, "--junit", filepath.Join(out, "j.xml"), "--html", filepath.Join(out, "r.html")}, 0, nil},
		{"write markdown", []string{"report", "write", fail, "--markdown", filepath.Join(out, "pr.md"), "--baseline", pass}, 0, nil},
		{"baseline without markdown", []string{"report", "write", fail, "--junit", filepath.Join(out, "j2.xml"), "--baseline", pass}, 2, nil},
		// An unfinished run is never read as a clean pass.
		{"show incomplete", []string{"report", "show", killed}, 3, []string{
			"INCOMPLETE RUN: results.json says finished: false", "no results for 1 of 3 VMs: 6.12/x86_64",
			"error (incomplete)", "no results: the run stopped before this VM finished", "checks: 2 pass, 0 fail, 1 error, 0 skip",
			"INCOMPLETE: the run did not finish"}},
		{"show killed early", []string{"report", "show", early}, 3, []string{"no results for 1 of 1 VMs: 6.1/x86_64"}},
		{"compare incomplete", []string{"report", "compare", pass, killed}, 1, []string{
			"new run incomplete: results.json says finished: false", "6.12/x86_64  REGRESSION", "regressions: 1"}},
		{"compare from incomplete", []string{"report", "compare", killed, pass}, 0, []string{"old run incomplete:", "regressions: 0"}},
		{"write incomplete", []string{"report", "write", killed, "--junit", filepath.Join(out, "k.xml")}, 0, []string{"is an incomplete run", "6.12/x86_64"}},
		{"site", []string{"report", "site", filepath.Join(out, "site"), pass, fail}, 0, []string{"site: " + filepath.Join(out, "site", "index.html") + "  nights 2  index.html "}},
		{"site again, keeping one", []string{"report", "site", "--keep", "1", filepath.Join(out, "site"), pass, fail}, 0, []string{"dropped r-fail (--keep 1)", "  nights 1  "}},
		{"site over another directory", []string{"report", "site", filepath.Dir(empty), pass}, 2, nil},
		{"site of one run twice", []string{"report", "site", filepath.Join(out, "site2"), pass, pass}, 2, nil},
		{"site without runs", []string{"report", "site", filepath.Join(out, "site3")}, 2, nil},
		// Refused before any VM boots.
		{"run --junit into a missing dir", []string{"run", "../../matrix.yaml", "--junit", filepath.Join(out, "no", "j.xml")}, 2, nil},
		{"run --html a directory", []string{"run", "../../matrix.yaml", "--html", out}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GITHUB_ACTIONS", "")
			code, output := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, output)
			}
			for _, s := range tt.contains {
				if !strings.Contains(output, s) {
					t.Errorf("output lacks %q:\n%s", s, output)
				}
			}
		})
	}
	j, err := os.ReadFile(filepath.Join(out, "j.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Failures int `xml:"failures,attr"`
		Tests    int `xml:"tests,attr"`
	}
	if err := xml.Unmarshal(j, &suites); err != nil || suites.Tests != 2 || suites.Failures != 1 {
		t.Errorf("report write --junit: tests=%d failures=%d err=%v", suites.Tests, suites.Failures, err)
	}
	pr, err := os.ReadFile(filepath.Join(out, "pr.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| btf |", "❌ MISSING_BTF", "### Failures by reason", "| `MISSING_BTF` | 1 |", "### Against r-pass",
		"6.1/x86_64 btf: pass → fail MISSING_BTF **regression**"} {
		if !strings.Contains(string(pr), want) {
			t.Errorf("report write --markdown lacks %q:\n%s", want, pr)
		}
	}
	h, err := os.ReadFile(filepath.Join(out, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	// The page is beside, not in, the run directory: links lead into it.
	rel, _ := filepath.Rel(out, fail)
	if !strings.Contains(string(h), `href="`+rel+`/6.1-x86_64/console.log"`) {
		t.Errorf("report write --html: console links not relative to the page (want %s/…)", rel)
	}
}

// Under GitHub Actions, report write also annotates and writes the job summary.
func TestReportGitHubActions(t *testing.T) {
	fail := writeRun(t, "r-fail", map[string]protocol.Status{"6.1": protocol.StatusFail})
	summary := filepath.Join(t.TempDir(), "summary.md")
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	code, output := runCLI(t, "report", "write", fail, "--junit", filepath.Join(t.TempDir(), "j.xml"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, output)
	}
	if !strings.Contains(output, "::error title=vmrunner 6.1/x86_64 btf%3A fail MISSING_BTF::btf fail\n") {
		t.Errorf("no annotation:\n%s", output)
	}
	b, _ := os.ReadFile(summary)
	if !strings.Contains(string(b), "| btf | ✅ | ❌ |") {
		t.Errorf("summary:\n%s", b)
	}
}
