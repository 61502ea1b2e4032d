package gotest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// equivDir is a Go test package with every kind of verdict.
var equivDir = filepath.Join("..", "..", "testdata", "goequiv")

// TestParseEqualsGoTestJSON holds Parse to `go test -json`, test by test,
// on the same package run both ways on the host: plain, with a panicking
// subtest, and with a test that hangs past -test.timeout.
func TestParseEqualsGoTestJSON(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "goequiv.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = equivDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		flags []string
		// unfinished is the test left without a verdict.
		unfinished string
	}{
		{name: "plain"},
		{name: "panic", env: []string{"GOEQUIV_PANIC=1"}},
		{name: "timeout", env: []string{"GOEQUIV_HANG=1"}, flags: []string{"-test.timeout=3s"}, unfinished: "TestHang"},
		{name: "count", flags: []string{"-test.count=2", "-test.run=TestPass|TestFail|TestSkip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The binary as go test -json runs it.
			run := exec.Command(bin, append(slices.Clone(tc.flags), "-test.v=test2json", "-test.paniconexit0")...)
			run.Dir = equivDir
			run.Env = append(os.Environ(), tc.env...)
			var out bytes.Buffer
			run.Stdout, run.Stderr = &out, &out
			_ = run.Run() // fails: the package has failing tests
			tests, err := Parse(&out)
			if err != nil {
				t.Fatal(err)
			}
			got := Verdicts(tests)

			var goFlags []string
			for _, f := range tc.flags {
				goFlags = append(goFlags, strings.TrimPrefix(f, "test."))
			}
			gt := exec.Command("go", append([]string{"test", "-json", "-count=1"}, append(goFlags, ".")...)...)
			gt.Dir = equivDir
			gt.Env = append(os.Environ(), tc.env...)
			js, _ := gt.Output()
			want, err := JSONVerdicts(bytes.NewReader(js))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) < 3 {
				t.Fatalf("go test -json gave %d verdicts:\n%s", len(want), js)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("verdicts differ\nParse:         %v\ngo test -json: %v", got, want)
			}
			if tc.unfinished != "" {
				if v, ok := got[tc.unfinished]; !ok || v != Unfinished {
					t.Errorf("%s: %q, want unfinished", tc.unfinished, v)
				}
				u := findTest(tests, tc.unfinished)
				if !strings.HasPrefix(u.Crash(), "panic: test timed out after 3s") {
					t.Errorf("%s crash line %q", tc.unfinished, u.Crash())
				}
			}
		})
	}
}

func findTest(tests []*Test, name string) *Test {
	for _, t := range tests {
		if t.Name == name {
			return t
		}
	}
	return &Test{}
}

func TestParseOutputAndElapsed(t *testing.T) {
	in := "\x16=== RUN   TestA\n" +
		"    a_test.go:3: first\n" +
		"partial\x16--- FAIL: TestA (1.25s)\n" +
		"\x16=== RUN   TestB\n" +
		"\x16=== RUN   TestB/x\n" +
		"\x16=== PAUSE TestB/x\n" +
		"\x16=== NAME  TestB\n" +
		"    b_test.go:9: belongs to B\n" +
		"\x16=== CONT  TestB/x\n" +
		"    b_test.go:12: belongs to x\n" +
		"\x16--- SKIP: TestB/x (0.00s)\n" +
		"\x16--- PASS: TestB (0.50s)\n" +
		"\x16=== NAME  \n" +
		"package output\n" +
		"\x16FAIL\n"
	tests, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(Verdicts(tests)); got != "map[TestA:fail TestB:pass TestB/x:skip]" {
		t.Fatalf("verdicts %s", got)
	}
	a, b, x := findTest(tests, "TestA"), findTest(tests, "TestB"), findTest(tests, "TestB/x")
	if a.Elapsed != 1.25 || b.Elapsed != 0.5 {
		t.Errorf("elapsed %v %v", a.Elapsed, b.Elapsed)
	}
	if a.Message() != "a_test.go:3: first" {
		t.Errorf("message %q", a.Message())
	}
	if !strings.Contains(string(a.Output), "partial") || !strings.Contains(string(b.Output), "belongs to B") ||
		strings.Contains(string(b.Output), "belongs to x") || !strings.Contains(string(x.Output), "belongs to x") {
		t.Errorf("output misattributed:\nA: %q\nB: %q\nx: %q", a.Output, b.Output, x.Output)
	}
	for _, tt := range tests {
		if strings.Contains(string(tt.Output), "package output") {
			t.Errorf("%s got the package's output", tt.Name)
		}
	}
}

func TestParseBoundsOutput(t *testing.T) {
	in := "\x16=== RUN   TestBig\n" + strings.Repeat("x", 3*MaxTestOutput) + "\nlast line\n"
	tests, _ := Parse(strings.NewReader(in))
	big := findTest(tests, "TestBig")
	if len(big.Output) > MaxTestOutput || !big.Truncated || !strings.HasSuffix(string(big.Output), "last line\n") {
		t.Errorf("output of %d bytes, truncated %v", len(big.Output), big.Truncated)
	}
	if big.Verdict != Unfinished {
		t.Errorf("verdict %q", big.Verdict)
	}
}
