package report

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// What JUnit consumers (Jenkins' junit step, the GitHub test-report
// actions) read, parsed independently of the writer's types.
type parsedSuites struct {
	XMLName xml.Name      `xml:"testsuites"`
	Attrs   []xml.Attr    `xml:",any,attr"`
	Suites  []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Attrs      []xml.Attr `xml:",any,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Attrs   []xml.Attr     `xml:",any,attr"`
	Failure *parsedProblem `xml:"failure"`
	Error   *parsedProblem `xml:"error"`
	Skipped *parsedProblem `xml:"skipped"`
}

type parsedProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func attr(as []xml.Attr, name string) (string, bool) {
	for _, a := range as {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// checkJUnitSchema applies the rules the common consumers rely on: counts
// and time on <testsuites> and each <testsuite> that add up, classname, name
// and time on each <testcase>, at most one outcome element per case.
func checkJUnitSchema(t *testing.T, doc parsedSuites) {
	t.Helper()
	num := func(where string, as []xml.Attr, name string) int {
		v, ok := attr(as, name)
		if !ok {
			t.Errorf("%s: attribute %s missing", where, name)
			return -1
		}
		if name == "time" {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
				t.Errorf("%s: time=%q is not a number of seconds", where, v)
			}
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Errorf("%s: %s=%q is not a count", where, name, v)
		}
		return n
	}
	var total [4]int
	for _, s := range doc.Suites {
		name, ok := attr(s.Attrs, "name")
		if !ok || name == "" {
			t.Errorf("testsuite without a name")
		}
		var got [4]int
		for _, c := range s.Cases {
			for _, a := range []string{"classname", "name", "time"} {
				if v, ok := attr(c.Attrs, a); !ok || v == "" {
					t.Errorf("%s: testcase attribute %s missing", name, a)
				}
			}
			num(name+" testcase", c.Attrs, "time")
			outcomes := 0
			for i, p := range []*parsedProblem{c.Failure, c.Error, c.Skipped} {
				if p != nil {
					outcomes++
					got[i+1]++
				}
			}
			if outcomes > 1 {
				t.Errorf("%s: testcase with %d outcome elements", name, outcomes)
			}
			got[0]++
		}
		for i, a := range []string{"tests", "failures", "errors", "skipped"} {
			if n := num(name, s.Attrs, a); n != got[i] {
				t.Errorf("%s: %s=%d, but the suite has %d", name, a, n, got[i])
			}
			total[i] += got[i]
		}
		num(name, s.Attrs, "time")
	}
	for i, a := range []string{"tests", "failures", "errors", "skipped"} {
		if n := num("testsuites", doc.Attrs, a); n != total[i] {
			t.Errorf("testsuites: %s=%d, want %d", a, n, total[i])
		}
	}
	num("testsuites", doc.Attrs, "time")
}

func TestWriteJUnit(t *testing.T) {
	run := sampleRun(t)
	var b bytes.Buffer
	if err := WriteJUnit(&b, run); err != nil {
		t.Fatal(err)
	}
	var doc parsedSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("parse JUnit back: %v\n%s", err, b.String())
	}
	checkJUnitSchema(t, doc)

	var names []string
	cases := map[string]parsedCase{}
	props := map[string]map[string]string{}
	for _, s := range doc.Suites {
		name, _ := attr(s.Attrs, "name")
		names = append(names, name)
		props[name] = map[string]string{}
		for _, p := range s.Properties {
			props[name][p.Name] = p.Value
		}
		for _, c := range s.Cases {
			cn, _ := attr(c.Attrs, "classname")
			n, _ := attr(c.Attrs, "name")
			cases[cn+" "+n] = c
		}
	}
	if got, want := strings.Join(names, ","), "5.10/x86_64,6.1/arm64,6.1/x86_64,6.12/x86_64"; got != want {
		t.Errorf("suites %s, want %s", got, want)
	}
	if p := props["6.1/x86_64"]; p["kernel_release"] != "6.1.0-50-amd64" || p["source_package"] != "linux-image-6.1.0-50-amd64-unsigned" ||
		p["source_version"] != "6.1.176-1" || len(p["source_sha256"]) != 64 || p["accel"] != "tcg" {
		t.Errorf("6.1/x86_64 properties: %v", p)
	}

	tests := []struct {
		name        string
		outcome     string // failure, error, skipped or "" for a pass
		typ         string
		contains    []string
		notContains []string
	}{
		{name: "6.12/x86_64 btf"},
		{name: "5.10/x86_64 btf", outcome: "failure", typ: "MISSING_BTF", contains: []string{"missing BTF types: vmrunner_no_such_type"}},
		{
			name: "6.1/x86_64 verifier/probes/loop", outcome: "failure", typ: "CHECK_FAILED",
			contains: []string{"back-edge from insn 7 to 3", "processed 131072 insns", "--- 6.1-x86_64/verifier/probes/loop.log",
				"; verifier line 102\n"},
			// The log has 302 lines; the last 200 are quoted.
			notContains: []string{"; verifier line 101\n"},
		},
		{
			name: "6.1/arm64 btf", outcome: "error", typ: "boot-timeout",
			contains: []string{"boot-timeout: boot: no message", "splat warning: WARNING: CPU: 0", "last console line before the timeout",
				"arm64 boot line 442\n", `serial \x00 byte \x07 bell`},
			// 502 console lines; the last 60 are quoted.
			notContains: []string{"arm64 boot line 441\n"},
		},
		{name: "6.1/arm64 verifier/probes/loop", outcome: "skipped", contains: []string{"not run: the VM did not boot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := cases[tt.name]
			if !ok {
				t.Fatalf("no testcase %q", tt.name)
			}
			got := map[string]*parsedProblem{"failure": c.Failure, "error": c.Error, "skipped": c.Skipped}
			for kind, p := range got {
				if (p != nil) != (kind == tt.outcome) {
					t.Errorf("<%s> present=%v, want outcome %q", kind, p != nil, tt.outcome)
				}
			}
			if tt.outcome == "" {
				return
			}
			p := got[tt.outcome]
			if p.Type != tt.typ {
				t.Errorf("type=%q, want %q", p.Type, tt.typ)
			}
			text := p.Message + "\n" + p.Text
			for _, s := range tt.contains {
				if !strings.Contains(text, s) {
					t.Errorf("missing %q in:\n%s", s, text)
				}
			}
			for _, s := range tt.notContains {
				if strings.Contains(text, s) {
					t.Errorf("has %q, beyond the bound", s)
				}
			}
		})
	}
}

// A results.json from elsewhere must not make the writer read outside the
// run directory.
func TestJUnitStaysInRunDir(t *testing.T) {
	run := sampleRun(t)
	secret := filepath.Join(filepath.Dir(run.Dir), "secret.log")
	os.WriteFile(secret, []byte("SECRET CONTENT\n"), 0o644)
	os.Symlink(secret, filepath.Join(run.Dir, "link.log"))
	for i := range run.Results {
		run.Results[i].Console = "../secret.log"
		run.Results[i].Artifacts = []string{"../secret.log", secret, "link.log"}
	}
	var b bytes.Buffer
	if err := WriteJUnit(&b, run); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "SECRET CONTENT") {
		t.Fatalf("JUnit quotes a file outside the run directory:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "not readable") {
		t.Errorf("JUnit does not say the files were not readable")
	}
}

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "short.log"), []byte("a\nb\nc\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "long.log"), []byte(strings.Repeat("0123456789\n", 10000)), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "console.log"), []byte("[ 1.0] \x1b]0;owned\x07\x1b[2Jcleared\r\n\xff\n"), 0o644)
	tests := []struct {
		name     string
		rel      string
		lines    int
		bytes    int
		want     string
		wantCut  bool
		wantErr  bool
		wantSize int
	}{
		{name: "whole", rel: "short.log", lines: 10, bytes: 100, want: "a\nb\nc"},
		{name: "last lines", rel: "short.log", lines: 2, bytes: 100, want: "b\nc", wantCut: true},
		{name: "byte bound", rel: "long.log", lines: 1000, bytes: 55, wantCut: true, wantSize: 54},
		{name: "a guest's console, sanitised", rel: "console.log", lines: 10, bytes: 100, want: `[ 1.0] \x1b]0;owned\x07\x1b[2Jcleared\r` + "\n\uFFFD"},
		{name: "parent", rel: "../x", lines: 1, bytes: 1, wantErr: true},
		{name: "directory", rel: "sub", lines: 1, bytes: 1, wantErr: true},
		{name: "missing", rel: "nope.log", lines: 1, bytes: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut, err := tailFile(dir, tt.rel, tt.lines, tt.bytes)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err=%v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if cut != tt.wantCut {
				t.Errorf("cut=%v, want %v", cut, tt.wantCut)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.wantSize != 0 && len(got) != tt.wantSize {
				t.Errorf("got %d bytes (%q), want %d whole lines", len(got), got, tt.wantSize)
			}
		})
	}
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"5.10", "6.1", -1}, {"6.1", "6.12", -1}, {"6.9", "6.12", -1}, {"6.12", "6.12", 0},
		{"7.0", "6.12", 1}, {"btf", "verifier/a", -1}, {"verifier/p2", "verifier/p10", -1}, {"6.1", "6.1-rt", -1},
	}
	for _, tt := range tests {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
