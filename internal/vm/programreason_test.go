package vm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// TestProgramReasons: a failed program's saved output (output.log), and a
// failed Go test's own log, give their records the reason they show,
// labelled and with what to do; a pass, a failure whose output shows no
// loader error and another check's failure keep theirs.
func TestProgramReasons(t *testing.T) {
	dir := t.TempDir()
	cachestat, err := os.ReadFile("../../reason/testdata/output/6.1-x86_64-libbpf-tools-cachestat.txt")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("test/cachestat/output.log", cachestat)
	write("test/pkg/TestLoad.log", []byte("=== RUN   TestLoad\n    load_test.go:20: load: program p: load program: permission denied: "+
		"BPF program is too large. Processed 1000001 insn (4001 line(s) omitted)\n--- FAIL: TestLoad (1.20s)\n"))
	write("test/pkg/TestSum.log", []byte("=== RUN   TestSum\n    sum_test.go:9: want 3, got 4\n--- FAIL: TestSum (0.00s)\n"))
	write("test/ok/output.log", cachestat)
	recs := ProgramReasons([]results.Record{
		{Check: "test/cachestat", Status: protocol.StatusFail},
		{Check: "test/pkg/TestLoad", Status: protocol.StatusFail},
		{Check: "test/pkg/TestSum", Status: protocol.StatusFail},
		{Check: "test/ok", Status: protocol.StatusPass},
		{Check: "btf", Status: protocol.StatusFail},
	}, dir)
	for i, want := range []struct {
		reason protocol.Reason
		detail string
	}{
		{protocol.ReasonAttachTargetMissing, "account_page_dirtied"},
		{protocol.ReasonTooComplex, "BPF program is too large. Processed 1000001 insn"},
		{}, {}, {},
	} {
		r := recs[i]
		if r.Reason != want.reason || r.ReasonDetail != want.detail {
			t.Errorf("%s: reason %s (%q), want %s (%q)", r.Check, r.Reason, r.ReasonDetail, want.reason, want.detail)
		}
		labelled := r.ReasonFrom == results.ReasonFromOutput && r.Hint != ""
		if labelled != (want.reason != "") {
			t.Errorf("%s: reason_from %q, hint %q", r.Check, r.ReasonFrom, r.Hint)
		}
	}
}
