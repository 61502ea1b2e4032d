package vm

import (
	"encoding/json"
	"github.com/vmrunner/vmrunner/internal/testsupport/testfs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func TestGoTestRecordName(t *testing.T) {
	used := map[string]bool{}
	for _, tc := range []struct{ test, want string }{
		{"TestA", "test/p/TestA"},
		{"TestA/with space", "test/p/TestA/with_space"},
		{"TestA/with:space", "test/p/TestA/with_space-2"},
		{"FuzzX/seed#0", "test/p/FuzzX/seed_0"},
		{"TestA/b/c/d/e", "test/p/TestA/b/c/d.e"},
		{"TestA/..", "test/p/TestA/_"},
	} {
		if got := goTestRecordName("test/p", tc.test, used); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.test, got, tc.want)
		}
	}
}

func TestExpandTests(t *testing.T) {
	dir := t.TempDir()
	out := "\x16=== RUN   TestPass\n\x16--- PASS: TestPass (0.10s)\n" +
		"\x16=== RUN   TestSkip\n    s_test.go:3: no bpf_loop\n\x16--- SKIP: TestSkip (0.00s)\n" +
		"\x16=== RUN   TestSub\n\x16=== RUN   TestSub/bad case\n    s_test.go:9: want 1, got 2\n\x16--- FAIL: TestSub/bad case (0.02s)\n\x16--- FAIL: TestSub (0.03s)\n" +
		"\x16=== RUN   TestHang\npanic: test timed out after 1s\n"
	testfs.WriteTree(t, dir, map[string]string{"test/p.test/output.log": out})
	params, _ := json.Marshal(protocol.TestParams{Name: "p.test", Binary: "/x/p.test", Format: protocol.FormatGo})
	plan := protocol.Plan{Checks: []protocol.CheckSpec{{Name: "btf"}, {Name: "test", Params: params}}}
	base := results.Record{Kernel: "6.1", Arch: "x86_64", KernelRelease: "6.1.0-50-amd64"}
	btf, pkg := base, base
	btf.Check, btf.Status = "btf", protocol.StatusPass
	pkg.Check, pkg.Status, pkg.Message = "test/p.test", protocol.StatusFail, "exit status 2"
	recs := ExpandTests([]results.Record{btf, pkg}, plan, dir, "6.1-x86_64")

	var got []string
	for _, r := range recs {
		got = append(got, r.Check+"="+string(r.Status))
	}
	want := "btf=pass test/p.test=fail test/p.test/TestPass=pass test/p.test/TestSkip=skip test/p.test/TestSub=fail test/p.test/TestSub/bad_case=fail test/p.test/TestHang=fail"
	if strings.Join(got, " ") != want {
		t.Fatalf("records\n %s\nwant\n %s", strings.Join(got, " "), want)
	}
	byName := map[string]results.Record{}
	for _, r := range recs {
		byName[r.Check] = r
	}
	if r := byName["test/p.test/TestSkip"]; r.Message != "s_test.go:3: no bpf_loop" || r.KernelRelease != "6.1.0-50-amd64" {
		t.Errorf("skip record %+v", r)
	}
	if r := byName["test/p.test/TestPass"]; r.DurationMS != 100 || len(r.Artifacts) != 0 {
		t.Errorf("pass record %+v", r)
	}
	if r := byName["test/p.test/TestHang"]; r.Message != "did not finish: panic: test timed out after 1s" {
		t.Errorf("unfinished test: %q", r.Message)
	}
	bad := byName["test/p.test/TestSub/bad_case"]
	var d GoTestDetails
	if err := json.Unmarshal(bad.Details, &d); err != nil || d.Test != "TestSub/bad case" || d.Runs != 1 {
		t.Errorf("details %s (%v)", bad.Details, err)
	}
	if len(bad.Artifacts) != 1 || bad.Artifacts[0] != "6.1-x86_64/test/p.test/TestSub/bad_case.log" {
		t.Fatalf("artifacts %v", bad.Artifacts)
	}
	log, err := os.ReadFile(filepath.Join(dir, "test/p.test/TestSub/bad_case.log"))
	if err != nil || !strings.Contains(string(log), "want 1, got 2") {
		t.Errorf("failure output %q (%v)", log, err)
	}

	// A VM that died under a test: the test is an error of the VM's kind.
	pkg.Check, pkg.Status, pkg.ErrorKind, pkg.Message = "test", protocol.StatusError, results.KindPanic, "kernel panic: Oops"
	recs = ExpandTests([]results.Record{pkg}, plan, dir, "6.1-x86_64")
	last := recs[len(recs)-1]
	if last.Check != "test/p.test/TestHang" || last.Status != protocol.StatusError || last.ErrorKind != results.KindPanic || !strings.Contains(last.Message, "kernel panic") {
		t.Errorf("test under a dying VM: %+v", last)
	}
}
