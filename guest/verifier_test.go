package guest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/protocol"
)

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseVerifierStats(t *testing.T) {
	log := "0: R1=ctx() R10=fp0\n0: (b7) r0 = 0\n1: (95) exit\nverification time 25 usec\nstack depth 0\n" +
		"processed 643 insns (limit 1000000) max_states_per_insn 1 total_states 40 peak_states 12 mark_read 3\n"
	insns, states, peak, ns := parseVerifierStats(log)
	if insns != 643 || states != 40 || peak != 12 || ns != 25000 {
		t.Errorf("got insns %d states %d peak %d time %d", insns, states, peak, ns)
	}
	if insns, _, _, ns := parseVerifierStats("nothing here"); insns != 0 || ns != 0 {
		t.Errorf("empty log: %d %d", insns, ns)
	}
}

func TestLastVerifierLine(t *testing.T) {
	log := []string{"0: (79) r0 = *(u64 *)(r10 +8)", "invalid read from stack R10 off=8 size=8", "verification time 5 usec", "stack depth 0",
		"processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0", ""}
	if got := lastVerifierLine(log); got != "invalid read from stack R10 off=8 size=8" {
		t.Errorf("got %q", got)
	}
	if got := lastVerifierLine(nil); got != "" {
		t.Errorf("empty log: %q", got)
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"probes": "probes", "my prog": "my_prog", "..": "_", "": "_", "a/b": "a_b", "ok.v2-x_y": "ok.v2-x_y",
		strings.Repeat("x", 100): strings.Repeat("x", 64),
	} {
		if got := sanitizeName(in); got != want || !protocol.ValidArtifactName("verifier/"+got+"/p.log") {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJudgeVerification(t *testing.T) {
	v510, _ := bpfprobe.ParseRelease("5.10.0-32-amd64")
	v61, _ := bpfprobe.ParseRelease("6.1.0-50-amd64")
	expect := map[string]protocol.VerifierExpect{"uses_bpf_loop": {Fail: []string{"<5.17"}}, "probes/only_here": {Fail: []string{"6.1"}}}
	for _, tc := range []struct {
		name   string
		prog   string
		loaded bool
		err    bool
		v      bpfprobe.Version
		status protocol.Status
		msg    string
	}{
		{"rejected as expected", "uses_bpf_loop", false, false, v510, protocol.StatusPass, "rejected as expected (<5.17): why"},
		{"loaded as expected", "uses_bpf_loop", true, false, v61, protocol.StatusPass, "loaded"},
		{"loaded but expected to fail", "only_here", true, false, v61, protocol.StatusFail, "expected to be rejected on 6.1.0 (6.1)"},
		{"rejected unexpectedly", "uses_bpf_loop", false, false, v61, protocol.StatusFail, "rejected: why"},
		{"not loadable", "other", false, true, v61, protocol.StatusError, "load other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &verification{name: tc.prog, reason: "why"}
			v.d.Loaded = tc.loaded
			if tc.err {
				v.err = os.ErrInvalid
			}
			v.judge(expect, "probes", tc.v, nil)
			if v.status != tc.status || !strings.Contains(v.message, tc.msg) {
				t.Errorf("got %s %q, want %s containing %q", v.status, v.message, tc.status, tc.msg)
			}
		})
	}
}

// TestVerifyObjectsBadInput covers what is reported before any program
// reaches the kernel: unreadable objects and unknown program names.
func TestVerifyObjectsBadInput(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "junk.o")
	writeTestFile(t, notELF, "not an ELF file")
	params, _ := json.Marshal(protocol.VerifierParams{Objects: []string{notELF, filepath.Join(dir, "missing.o")}})
	o, err := verifyObjects(context.Background(), "6.1.0", params)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sub) != 2 || o.Sub[0].Check != "verifier/junk" || o.Sub[0].Status != protocol.StatusError || o.Sub[1].Check != "verifier/missing" {
		t.Fatalf("results: %+v", o.Sub)
	}

	probes, _ := filepath.Abs("../testdata/bpf/probes.o")
	params, _ = json.Marshal(protocol.VerifierParams{Objects: []string{probes}, Programs: []string{"no_such_prog"}})
	o, err = verifyObjects(context.Background(), "6.1.0", params)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sub) != 1 || o.Sub[0].Check != "verifier/probes/no_such_prog" || o.Sub[0].Status != protocol.StatusError ||
		!strings.Contains(o.Sub[0].Message, `no program "no_such_prog" in probes.o`) {
		t.Fatalf("results: %+v", o.Sub)
	}
	if _, err := verifyObjects(context.Background(), "6.1.0", json.RawMessage(`{"objects":[]}`)); err == nil {
		t.Error("no objects: no error")
	}
}
