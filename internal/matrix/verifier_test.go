package matrix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

const testKernel = "kernels:\n  - {name: k, source: {debian: {suite: bookworm}}}\n"

func TestDefaultMatrixVerifier(t *testing.T) {
	m, err := LoadMatrix("../../matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(m.Checks, func(c Check) bool { return c.Name == "verifier" })
	if i < 0 {
		t.Fatal("no verifier check in matrix.yaml")
	}
	c := m.Checks[i]
	if len(c.Files) == 0 || c.Files[0].Host != filepath.Join("..", "..", "testdata", "bpf", "probes.o") || c.Files[0].Guest != "/vmrunner/objects/probes.o" {
		t.Fatalf("files: %+v", c.Files)
	}
	var p protocol.VerifierParams
	if err := json.Unmarshal(c.Params, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 1 || p.Objects[0].Path != "/vmrunner/objects/probes.o" || !slices.Equal(p.Expect["uses_bpf_loop"].Fail, []string{"<5.17"}) {
		t.Errorf("params sent to the guest: %s", c.Params)
	}
}

func TestVerifierParams(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.o", "b.o", "sub/a.o"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("\x7fELF"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "m.yaml")

	m, err := ParseMatrix(file, []byte(testKernel+`checks:
  - verifier:
      objects: ["*.o"]
      programs: [p1]
      expect: {p1: {fail: ["<5.17", "6.1", ">=6.12.3"]}}
      budget: {insns_percent_of_limit: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Checks[0]
	var got protocol.VerifierParams
	if err := json.Unmarshal(c.Params, &got); err != nil {
		t.Fatal(err)
	}
	want := protocol.VerifierParams{
		Objects:  []protocol.VerifierObject{{Path: "/vmrunner/objects/a.o"}, {Path: "/vmrunner/objects/b.o"}},
		Programs: []string{"p1"},
		Expect:   map[string]protocol.VerifierExpect{"p1": {Fail: []string{"<5.17", "6.1", ">=6.12.3"}}},
		Budget:   &protocol.VerifierBudget{InsnsPercentOfLimit: 50},
	}
	equal(t, "params", got, want)
	if len(c.Files) != 2 || c.Files[0].Host != filepath.Join(dir, "a.o") {
		t.Errorf("files: %+v", c.Files)
	}

	for _, tc := range []struct {
		name, checks, want string
	}{
		{"no match", "  - verifier: {objects: [none/*.o]}\n", `m.yaml:4:26: checks[0].verifier: objects[0]: "none/*.o" matches no file`},
		{"second pattern", "  - verifier: {objects: [a.o, zz.o]}\n", `m.yaml:4:31: checks[0].verifier: objects[1]: "zz.o" matches no file`},
		{"no objects", "  - verifier: {programs: [x]}\n", "m.yaml:4:15: checks[0].verifier: missing objects"},
		{"bare", "  - verifier\n", "m.yaml:4:5: checks[0].verifier: missing objects"},
		{"same name", "  - verifier: {objects: [a.o, sub/a.o]}\n", "have the same name; rename one"},
		{"bad range", "  - verifier: {objects: [a.o], expect: {p: {fail: [\"<5\"]}}}\n", `m.yaml:4:52: checks[0].verifier.expect.p.fail[0]: "<5": expected <V, <=V, >V, >=V, =V or V`},
		{"range not a string", "  - verifier: {objects: [a.o], expect: {p: {fail: [[1]]}}}\n", "expected a kernel version range"},
		{"unknown key", "  - verifier: {objects: [a.o], expect: {p: {pass: [\"5.10\"]}}}\n", `unknown key "pass"`},
		{"budget over 100", "  - verifier: {objects: [a.o], budget: {insns_percent_of_limit: 120}}\n", "checks[0].verifier.budget.insns_percent_of_limit: expected a percentage of the verifier's instruction limit, more than 0 and at most 100, got \"120\""},
		{"budget not a number", "  - verifier: {objects: [a.o], budget: {insns_percent_of_limit: half}}\n", "expected a percentage"},
		{"budget unknown key", "  - verifier: {objects: [a.o], budget: {growth: 20}}\n", `unknown key "growth"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMatrix(file, []byte(testKernel+"checks:\n"+tc.checks))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n %v\nwant it to contain\n %s", err, tc.want)
			}
		})
	}
}

func TestFeaturesParams(t *testing.T) {
	m, err := ParseMatrix("m.yaml", []byte(testKernel+"checks:\n  - features: {programs: all, maps: none, helpers: [loop, ringbuf_output]}\n  - btf\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(m.Checks[0].Params), `{"programs":["all"],"maps":["none"],"helpers":["loop","ringbuf_output"]}`; got != want {
		t.Errorf("params: got %s, want %s", got, want)
	}
	m, err = ParseMatrix("m.yaml", []byte(testKernel+"checks:\n  - features\n"))
	if err != nil || m.Checks[0].Params != nil {
		t.Errorf("bare features: %v, params %s", err, m.Checks[0].Params)
	}

	for _, tc := range []struct{ checks, want string }{
		{"  - features: {helpers: [lop]}\n", `m.yaml:4:26: checks[0].features: helpers: unknown helper "lop" (did you mean "loop"?)`},
		{"  - features: {maps: [ringbuf, hashh]}\n", `m.yaml:4:32: checks[0].features: maps: unknown map "hashh"`},
		{"  - features: {programs: some}\n", `m.yaml:4:26: checks[0].features.programs: expected "all", "none" or a list of names`},
	} {
		_, err := ParseMatrix("m.yaml", []byte(testKernel+"checks:\n"+tc.checks))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.checks, err, tc.want)
		}
	}
}

func TestVerifierParamsProgramNames(t *testing.T) {
	probes, err := filepath.Abs("../../testdata/bpf/probes.o")
	if err != nil {
		t.Fatal(err)
	}
	matrix := func(rest string) []byte {
		return []byte(testKernel + "checks:\n  - verifier:\n      objects: [" + probes + "]\n" + rest)
	}
	if _, err := ParseMatrix("m.yaml", matrix("      programs: [uses_bpf_loop]\n      expect: {probes/uses_bpf_loop: {fail: [\"<5.17\"]}, bounded_loop: {fail: [\"<5.3\"]}}\n")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rest, want string }{
		{"      programs: [uses_bpf_lop]\n", `m.yaml:6:18: checks[0].verifier: programs[0]: no program "uses_bpf_lop" in the objects; they have: bounded_loop, core_task_pid`},
		{"      expect: {nope: {fail: [\"5.10\"]}}\n", `m.yaml:6:16: checks[0].verifier: expect: no program "nope"`},
	} {
		_, err := ParseMatrix("m.yaml", matrix(tc.rest))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.rest, err, tc.want)
		}
	}
}
