package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

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
	s := parseVerifierStats(log)
	if s.insns != 643 || s.states != 40 || s.peak != 12 || s.timeNS != 25000 || s.limit != 1000000 || s.stack != 0 || !s.found {
		t.Errorf("got %+v", s)
	}
	// 6.12's stack_limit of testdata/bpf/loader/reasons.o: two frames.
	if s := parseVerifierStats("combined stack size of 2 calls is 640. Too large\nverification time 4786 usec\nstack depth 320+320\n" +
		"processed 37 insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 3 mark_read 2\n"); s.stack != 640 || s.insns != 37 {
		t.Errorf("two frames: %+v", s)
	}
	if s := parseVerifierStats("nothing here"); s.insns != 0 || s.timeNS != 0 || s.found {
		t.Errorf("empty log: %+v", s)
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
	expect := map[string]protocol.VerifierExpect{
		"uses_bpf_loop": {Fail: []string{"<5.17"}}, "probes/only_here": {Fail: []string{"6.1"}},
		"tcx_pass": {Fail: []string{"<6.6"}}, "ct_lookup": {Fail: []string{"<6.0"}},
	}
	for _, tc := range []struct {
		name string
		prog string
		v    bpfprobe.Version
		set  func(v *verification)
		// want
		status protocol.Status
		kind   string
		msg    string
	}{
		{"rejected as expected", "uses_bpf_loop", v510, func(v *verification) { v.rejected, v.d.InsnsProcessed = true, 3 },
			protocol.StatusPass, "", "rejected as expected (<5.17): why"},
		{"rejected before the walk, as expected", "uses_bpf_loop", v510, func(v *verification) { v.rejected = true },
			protocol.StatusPass, "", "rejected as expected (<5.17): why"},
		{"loaded as expected", "uses_bpf_loop", v61, func(v *verification) { v.d.Loaded, v.d.InsnsProcessed = true, 34 },
			protocol.StatusPass, "", "loaded: 34 insns processed"},
		{"loaded but expected to fail", "only_here", v61, func(v *verification) { v.d.Loaded = true },
			protocol.StatusFail, "", "expected to be rejected on 6.1.0 (6.1)"},
		{"rejected unexpectedly", "uses_bpf_loop", v61, func(v *verification) { v.rejected, v.d.InsnsProcessed = true, 3 },
			protocol.StatusFail, "", "rejected: why"},
		{"rejected before the walk", "other", v61, func(v *verification) { v.rejected = true },
			protocol.StatusFail, "", "rejected before the verifier walked it (0 insns processed): why"},
		{"missing attach target", "other", v61, func(v *verification) {
			v.rejected, v.reason = true, "Tracing programs must provide btf_id"
		}, protocol.StatusError, protocol.ErrorKindLoad, "needs attach_to"},
		{"too complex", "other", v61, func(v *verification) {
			v.rejected, v.d.TooComplex, v.d.InsnsProcessed = true, true, 1000001
		}, protocol.StatusFail, "", "rejected: too complex (1000001 insns processed): why"},
		{"CO-RE", "other", v61, func(v *verification) { v.rejected, v.d.CORE, v.d.InsnsProcessed = true, true, 5 },
			protocol.StatusFail, "", "rejected: why (a CO-RE relocation found nothing in this kernel's BTF"},
		{"loader step", "other", v61, func(v *verification) {
			v.err = &stepError{step: "create map flows", err: errors.New("MaxEntries may be incorrectly set to zero")}
		}, protocol.StatusError, protocol.ErrorKindLoad, "load: create map flows: MaxEntries may be incorrectly set to zero (its loader sets the size"},
		{"not supported", "ct_lookup", v61, func(v *verification) {
			v.err, v.unsupported = fmt.Errorf("kfunc bpf_xdp_ct_lookup: %w", ebpf.ErrNotSupported), true
		}, protocol.StatusError, protocol.ErrorKindLoad, "modules: [NAME]"},
		{"not supported, as expected", "ct_lookup", v510, func(v *verification) {
			v.err, v.unsupported = fmt.Errorf("kfunc bpf_xdp_ct_lookup: %w", ebpf.ErrNotSupported), true
		}, protocol.StatusPass, "", "not supported, as expected (<6.0)"},
		{"cannot attach", "tcx_pass", v61, func(v *verification) {
			v.d.Loaded, v.attachErr = true, errors.New("tcx ingress on lo: not supported")
		}, protocol.StatusPass, "", "loaded, cannot attach, as expected (<6.6)"},
		{"cannot attach, unexpected", "other", v61, func(v *verification) {
			v.d.Loaded, v.attachErr = true, errors.New("fentry vfs_read: not supported")
		}, protocol.StatusFail, "", "loaded but cannot attach: fentry vfs_read: not supported"},
		{"no program type", "other", v61, func(v *verification) { v.skipped = "not loaded: section \"other\" names no program type" },
			protocol.StatusSkip, "", "not loaded: section"},
		{"attached", "other", v61, func(v *verification) { v.d.Loaded, v.d.Attach, v.d.Attached = true, "xdp on lo", true },
			protocol.StatusPass, "", "; attached: xdp on lo"},
		{"over the budget", "other", v61, func(v *verification) { v.d.Loaded, v.d.InsnsProcessed, v.d.InsnsLimit = true, 600001, 1000000 },
			protocol.StatusFail, "", "over the complexity budget: 600001 insns processed, 60.0% of this kernel's limit of 1000000 (budget 50%)"},
		{"at the budget", "other", v61, func(v *verification) { v.d.Loaded, v.d.InsnsProcessed, v.d.InsnsLimit = true, 500000, 1000000 },
			protocol.StatusPass, "", "loaded: 500000 insns processed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &verifierRun{p: protocol.VerifierParams{Expect: expect, Budget: &protocol.VerifierBudget{InsnsPercentOfLimit: 50}}, kv: tc.v}
			v := &verification{name: tc.prog, reason: "why"}
			tc.set(v)
			r.judge(v, "probes")
			if v.status != tc.status || v.kind != tc.kind || !strings.Contains(v.message, tc.msg) {
				t.Errorf("got %s/%s %q, want %s/%s containing %q", v.status, v.kind, v.message, tc.status, tc.kind, tc.msg)
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
	env := verifierEnv{release: "6.1.0", arch: "x86_64", bpffs: dir}
	params, _ := json.Marshal(protocol.VerifierParams{Objects: []protocol.VerifierObject{{Path: notELF}, {Path: filepath.Join(dir, "missing.o")}}})
	o, err := verifyObjects(context.Background(), env, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sub) != 2 || o.Sub[0].Check != "verifier/junk" || o.Sub[0].Status != protocol.StatusError || o.Sub[0].ErrorKind != protocol.ErrorKindLoad ||
		o.Sub[1].Check != "verifier/missing" || !strings.Contains(o.Sub[1].Message, "read object missing.o") {
		t.Fatalf("results: %+v", o.Sub)
	}

	// A bad constant or size: the object's record says so and nothing loads.
	constants, _ := filepath.Abs("../testdata/bpf/loader/constants.o")
	params, _ = json.Marshal(protocol.VerifierParams{Objects: []protocol.VerifierObject{
		{Path: constants, Constants: map[string]string{"port": "70000"}},
		{Path: constants, Name: "sized", Maps: map[string]protocol.VerifierMap{"flows": {MaxEntries: 1}}},
	}})
	o, err = verifyObjects(context.Background(), env, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sub) != 2 || o.Sub[0].Check != "verifier/constants" || o.Sub[0].ErrorKind != protocol.ErrorKindLoad ||
		!strings.Contains(o.Sub[0].Message, "set constant port: port is an unsigned 2-byte integer") ||
		o.Sub[1].Check != "verifier/sized" || !strings.Contains(o.Sub[1].Message, `set map size: no map "flows"`) {
		t.Fatalf("results: %+v", o.Sub)
	}

	// The other arch's build is not loaded at all.
	params, _ = json.Marshal(protocol.VerifierParams{Objects: []protocol.VerifierObject{{Path: notELF, Arch: "arm64"}}})
	o, err = verifyObjects(context.Background(), env, params)
	if err != nil || o.Status != protocol.StatusSkip || len(o.Sub) != 0 {
		t.Fatalf("other arch only: %+v, %v", o, err)
	}

	if _, err := verifyObjects(context.Background(), env, json.RawMessage(`{"objects":[]}`)); err == nil {
		t.Error("no objects: no error")
	}
}
