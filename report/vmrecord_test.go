package report

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// diedRun is sampleRun where 6.12/x86_64 passed its check and its kernel then
// panicked: the VM has an error record of its own (check vm), as vmrunner
// writes for a VM that did not end with done and a clean power-off.
func diedRun(t *testing.T) Run {
	run := sampleRun(t)
	run.Results = append(run.Results, results.Record{Kernel: "6.12", Arch: "x86_64", KernelRelease: "6.12.117+deb13-amd64",
		Accel: "tcg", Check: results.VMCheck, Status: protocol.StatusError, ErrorKind: results.KindPanic,
		Message: "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000", DurationMS: 2500,
		Splats:  []results.Splat{{Kind: "panic", Line: "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000"}},
		Console: "6.12-x86_64/console.log"})
	return run
}

// killedRun is sampleRun as results.json is when vmrunner was killed with
// 6.12/arm64 still running: finished false, and a planned VM without records.
func killedRun(t *testing.T) Run {
	run := sampleRun(t)
	run.Run.Finished, run.Run.ExitCode = false, 0
	run.Run.Targets = []results.Target{{Kernel: "5.10", Arch: "x86_64"}, {Kernel: "6.1", Arch: "x86_64"}, {Kernel: "6.1", Arch: "arm64"},
		{Kernel: "6.12", Arch: "x86_64"}, {Kernel: "6.12", Arch: "arm64"}}
	return run
}

type rendered struct{ summary, junit, html, annotations, stepSummary string }

func renderAll(t *testing.T, run Run) rendered {
	t.Helper()
	var s, j, h, a, m bytes.Buffer
	for _, err := range []error{WriteSummary(&s, run.Report), WriteJUnit(&j, run), WriteHTML(&h, run, ""),
		WriteAnnotations(&a, run), WriteStepSummary(&m, run)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var doc parsedSuites
	if err := xml.Unmarshal(j.Bytes(), &doc); err != nil {
		t.Fatalf("junit: %v", err)
	}
	checkJUnitSchema(t, doc)
	return rendered{s.String(), j.String(), h.String(), a.String(), m.String()}
}

// TestVMRecordRendered: a record about the VM rather than a check shows in
// every rendering like any error, whatever its check name.
func TestVMRecordRendered(t *testing.T) {
	out := renderAll(t, diedRun(t))
	panicMsg := "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000"
	for _, tc := range []struct {
		what, text string
		want       []string
	}{
		{"summary", out.summary, []string{panicMsg, "checks: 2 pass, 2 fail, 2 error, 1 skip"}},
		{"junit", out.junit, []string{`<testcase classname="6.12/x86_64" name="vm" time="2.500">`,
			`<error message="` + panicMsg + `" type="panic">`, `errors="2"`}},
		{"html", out.html, []string{`data-status="error" data-target="6.12/x86_64" data-check="vm"`, panicMsg,
			`<span class="badge b-error">2 error</span>`}},
		{"annotations", out.annotations, []string{"::error title=vmrunner 6.12/x86_64 vm%3A error (panic) KERNEL_PANIC::" + panicMsg + "%0Apanic: " + panicMsg}},
		{"step summary", out.stepSummary, []string{"| vm | – | – | – | 💥 |", "**6.12/x86_64** vm: error (panic) `KERNEL_PANIC`: " + panicMsg}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.text, w) {
				t.Errorf("%s lacks %q:\n%s", tc.what, w, tc.text)
			}
		}
	}
	if row := regexp.MustCompile(`(?m)^6\.12 +x86_64 +6\.12\.117\+deb13-amd64 +vm +error \(panic\) +KERNEL_PANIC +2\.5s +Kernel panic`); !row.MatchString(out.summary) {
		t.Errorf("summary has no row for the VM's panic:\n%s", out.summary)
	}
}

// TestCompareVMRecord: a VM that newly died is a regression even though
// every check it ran passed; one that no longer dies is an improvement.
func TestCompareVMRecord(t *testing.T) {
	clean, died := sampleRun(t), diedRun(t)
	c := Compare(clean.Report, died.Report, CompareOptions{Threshold: DefaultThreshold})
	if c.Regressions() != 1 || len(c.Verdicts) != 1 || len(c.Added) != 0 {
		t.Fatalf("clean → died: %+v", c)
	}
	if v := c.Verdicts[0]; v.String() != "6.12/x86_64 vm" || v.Old != protocol.StatusPass || v.New != protocol.StatusError || !v.Regression {
		t.Errorf("clean → died: %+v", v)
	}
	c = Compare(died.Report, clean.Report, CompareOptions{Threshold: DefaultThreshold})
	if c.Regressions() != 0 || len(c.Verdicts) != 1 || c.Verdicts[0].New != protocol.StatusPass || len(c.Removed) != 0 || len(c.Kernels) != 0 {
		t.Errorf("died → clean: %+v", c)
	}
	// A VM record for a target the other run did not have is added, not a verdict.
	old := sampleRun(t)
	old.Results = old.Results[1:] // no 6.12/x86_64
	c = Compare(old.Report, died.Report, CompareOptions{Threshold: DefaultThreshold})
	if len(c.Added) != 2 || c.Added[1].String() != "6.12/x86_64 vm" {
		t.Errorf("added: %v", c.Added)
	}
}

// TestIncompleteRendered: an unfinished run says so in every rendering, and
// names the VM it has no record of.
func TestIncompleteRendered(t *testing.T) {
	out := renderAll(t, killedRun(t))
	note := "results.json says finished: false (vmrunner was killed or crashed, or is still running); no results for 1 of 5 VMs: 6.12/arm64"
	for _, tc := range []struct {
		what, text string
		want       []string
	}{
		{"summary", out.summary, []string{"INCOMPLETE RUN: " + note, "error (incomplete)",
			"checks: 2 pass, 2 fail, 2 error, 1 skip\nINCOMPLETE: the run did not finish"}},
		{"junit", out.junit, []string{`<testsuite name="6.12/arm64"`, `<testcase classname="6.12/arm64" name="vm"`, `type="incomplete"`,
			`<testsuite name="vmrunner"`, `<testcase classname="vmrunner" name="finished" time="0.000">`, "incomplete run: " + note, `errors="3"`}},
		{"html", out.html, []string{`<div class="incomplete" id="incomplete" role="alert"><strong>Incomplete run:</strong> ` + note + `</div>`,
			`data-status="error" data-target="6.12/arm64" data-check="vm"`, "<dd>unfinished</dd>"}},
		{"annotations", out.annotations, []string{"::error title=vmrunner run 20261126-021029-73f7%3A incomplete::" + note + "\n",
			"::error title=vmrunner 6.12/arm64 vm%3A error (incomplete) INCOMPLETE::no results: the run stopped before this VM finished"}},
		{"step summary", out.stepSummary, []string{"> **Incomplete run**: " + note, "6.12/arm64"}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.text, w) {
				t.Errorf("%s lacks %q:\n%s", tc.what, w, tc.text)
			}
		}
	}
	if row := regexp.MustCompile(`(?m)^6\.12 +arm64 +- +vm +error \(incomplete\) +INCOMPLETE +0s +no results: the run stopped before this VM finished`); !row.MatchString(out.summary) {
		t.Errorf("summary has no row for the missing VM:\n%s", out.summary)
	}
	if !strings.HasPrefix(out.annotations, "::error title=vmrunner run 20261126-021029-73f7%3A incomplete::") {
		t.Errorf("the incompleteness is not the first annotation:\n%s", out.annotations)
	}

	// A finished run has no note and no extra records.
	full := renderAll(t, sampleRun(t))
	for what, text := range map[string]string{"summary": full.summary, "junit": full.junit, "annotations": full.annotations, "step summary": full.stepSummary} {
		if strings.Contains(strings.ToLower(text), "incomplete") {
			t.Errorf("finished run: %s mentions incomplete", what)
		}
	}
	if strings.Contains(full.html, `id="incomplete"`) {
		t.Error("finished run: html has the incomplete banner")
	}
}

func TestIncompleteNote(t *testing.T) {
	many := results.Report{}
	for i := range 30 {
		many.Run.Targets = append(many.Run.Targets, results.Target{Kernel: "k" + string(rune('a'+i%26)) + string(rune('0'+i/26)), Arch: "x86_64"})
	}
	tests := []struct {
		name string
		rep  results.Report
		want string // "" for no note
	}{
		{"finished", results.Report{Run: results.RunInfo{Finished: true}}, ""},
		{"plan unknown", results.Report{}, "it does not list the VMs it planned, so some may be missing"},
		{"all there", results.Report{Run: results.RunInfo{Targets: []results.Target{{Kernel: "6.1", Arch: "x86_64"}}},
			Results: []results.Record{{Kernel: "6.1", Arch: "x86_64", Check: "btf"}}}, "every planned VM has results"},
		{"many missing", many, "no results for 30 of 30 VMs: ka0/x86_64, kb0/x86_64, "},
		{"many missing, bounded", many, ", kt0/x86_64, and 10 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IncompleteNote(tt.rep)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("IncompleteNote = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

// TestCompareIncomplete: an unfinished new run is a regression that names
// the VMs it lacks; an unfinished old run is only noted.
func TestCompareIncomplete(t *testing.T) {
	done, killed := sampleRun(t), killedRun(t)
	killed.Results = killed.Results[:len(killed.Results)-2] // 6.1/arm64 had not finished either
	c := Compare(done.Report, killed.Report, CompareOptions{Threshold: DefaultThreshold})
	if c.Regressions() != 1 || c.NewIncomplete == "" || c.OldIncomplete != "" {
		t.Fatalf("done → killed: regressions %d, %+v", c.Regressions(), c)
	}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"new run incomplete: ", "no results for 2 of 5 VMs: 6.1/arm64, 6.12/arm64  REGRESSION",
		"removed:\n  6.1/arm64 btf\n  6.1/arm64 verifier/probes/loop\n", "regressions: 1"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("comparison lacks %q:\n%s", w, b.String())
		}
	}
	c = Compare(killed.Report, done.Report, CompareOptions{Threshold: DefaultThreshold})
	if c.Regressions() != 0 || c.OldIncomplete == "" || c.NewIncomplete != "" {
		t.Errorf("killed → done: regressions %d, %+v", c.Regressions(), c)
	}
}
