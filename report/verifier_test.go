package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func verifierRecord(t *testing.T, kernel, program string, status protocol.Status, reason protocol.Reason, d protocol.VerifierDetails) results.Record {
	t.Helper()
	d.Object, d.Program = "probes", program
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return results.Record{Kernel: kernel, Arch: "x86_64", Check: "verifier/probes/" + program, Status: status, Reason: reason, Details: b}
}

func TestVerifierReport(t *testing.T) {
	old := []results.Record{
		verifierRecord(t, "5.10", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 100000, InsnsLimit: 1000000, States: 40, PeakStates: 12, StackDepth: 64, Instructions: 30}),
		verifierRecord(t, "6.1", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 90000, InsnsLimit: 1000000, States: 38, PeakStates: 11, Instructions: 30}),
		verifierRecord(t, "6.1", "big", protocol.StatusFail, protocol.ReasonTooComplex, protocol.VerifierDetails{InsnsProcessed: 1000001, InsnsLimit: 1000000}),
		{Kernel: "6.1", Arch: "x86_64", Check: "verifier/probes", Status: protocol.StatusPass, Details: json.RawMessage(`{"object":"probes","programs":2}`)},
		{Kernel: "6.1", Arch: "x86_64", Check: "btf", Status: protocol.StatusPass},
	}
	rows, err := VerifierRows(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want the 3 programs × kernels: %+v", len(rows), rows)
	}
	var b bytes.Buffer
	if over, err := WriteVerifierTable(&b, rows, "insns", 0); err != nil || over != 0 {
		t.Fatal(over, err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i, want := range []string{"PROGRAM", "probes/big  6.1/x86_64  fail  TOO_COMPLEX  1000001  100.0  base", "probes/loop  5.10/x86_64  pass  100000  10.0  base  40  12  64  30",
		"probes/loop  6.1/x86_64  pass  90000  9.0  -10.0%  38"} {
		if got := strings.Join(strings.Fields(lines[i]), "  "); !strings.HasPrefix(got, want) {
			t.Errorf("line %d: %q, want it to start with %q\n%s", i, got, want, b.String())
		}
	}

	// The same objects again, loop made heavier on 6.1.
	heavier := append([]results.Record(nil), old...)
	heavier[1] = verifierRecord(t, "6.1", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 120000, InsnsLimit: 1000000, States: 50, PeakStates: 15, Instructions: 36})
	newRows, err := VerifierRows(heavier)
	if err != nil {
		t.Fatal(err)
	}
	// Across the run's kernels: 6.1 against 5.10, the program's base.
	b.Reset()
	over, err := WriteVerifierTable(&b, newRows, "growth", 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.Join(strings.Fields(strings.Split(b.String(), "\n")[1]), " "); over != 1 ||
		first != "probes/loop 6.1/x86_64 pass 120000 12.0 +20.0% 50 15 0 36 0 OVER" {
		t.Errorf("%d over a 10%% growth budget across kernels, first row %q; want 1, loop on 6.1 +20.0%% OVER\n%s", over, first, b.String())
	}
	changes := CompareVerifier(rows, newRows)
	b.Reset()
	over, err = WriteVerifierCompare(&b, changes, "program", 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if over != 1 {
		t.Errorf("%d over the 20%% growth budget, want 1:\n%s", over, b.String())
	}
	var grown string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "6.1/x86_64") && strings.Contains(l, "probes/loop") {
			grown = strings.Join(strings.Fields(l), " ")
		}
	}
	if want := "probes/loop 6.1/x86_64 pass pass 90000 120000 +33.3% 38 50 +31.6% 11 15 0 0 12.0 OVER"; grown != want {
		t.Errorf("grown row %q, want %q\n%s", grown, want, b.String())
	}
	if over, _ := WriteVerifierCompare(&b, changes, "program", 0.5); over != 0 {
		t.Errorf("%d over a 50%% budget, want 0", over)
	}
	if _, err := VerifierRows(old[4:]); err == nil {
		t.Error("a run without verifier records: no error")
	}
	if err := CheckVerifierColumn("peak"); err != nil {
		t.Error(err)
	}
	if err := CheckVerifierColumn("bogus"); err == nil || !strings.Contains(err.Error(), "expected one of program, target") {
		t.Errorf("bad column: %v", err)
	}
}

// TestMarkdownAcross: the Markdown report's table of complexity across the
// run's kernels lists a program whose instructions processed grew from its
// base kernel by more than the threshold, as GFM renders it.
func TestMarkdownAcross(t *testing.T) {
	recs := []results.Record{
		verifierRecord(t, "5.10", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 100000, InsnsLimit: 1000000}),
		verifierRecord(t, "6.1", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 120000, InsnsLimit: 1000000}),
		verifierRecord(t, "6.12", "loop", protocol.StatusPass, "", protocol.VerifierDetails{InsnsProcessed: 102000, InsnsLimit: 1000000}),
	}
	doc := markdownAcross(recs, 0.05)
	tables := gfmTables(t, []byte(doc))
	if len(tables) != 1 || len(tables[0]) != 2 {
		t.Fatalf("tables %q, want one with a header and 6.1's row:\n%s", tables, doc)
	}
	if got := strings.Join(tables[0][1], "|"); got != "probes/loop|6.1/x86_64|5.10|120000|+20.0%|12.0%" {
		t.Errorf("row %q:\n%s", got, doc)
	}
	if doc := markdownAcross(recs, 0.25); doc != "" {
		t.Errorf("nothing over 25%%, got:\n%s", doc)
	}
}
