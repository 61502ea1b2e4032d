package gotest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Verdicts of a test.
const (
	Pass       = "pass"
	Fail       = "fail"
	Skip       = "skip"
	Unfinished = "" // started, never ended
)

// marker starts every framing line in -test.v=test2json mode.
const marker = 0x16

// MaxTestOutput bounds the output kept per test: its last bytes.
const MaxTestOutput = 64 << 10

// maxTests bounds how many tests are tracked.
const maxTests = 100_000

// Test is one test or subtest, by its full name ("TestX/sub").
type Test struct {
	Name    string
	Verdict string
	// Elapsed is the time the testing package reported, summed over runs
	// (-test.count).
	Elapsed float64
	// Runs counts the runs; Fails and Skips those that failed or skipped.
	Runs, Fails, Skips int
	// Output is the test's own output (framing lines included), its last
	// MaxTestOutput bytes.
	Output []byte
	// Truncated says Output lost its beginning.
	Truncated bool
}

// Parse reads a test binary's output to the end and returns its tests in
// the order they started.
func Parse(r io.Reader) ([]*Test, error) {
	p := &parser{byName: map[string]*Test{}}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			p.line(line)
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			// A very long line: the rest comes as more lines of output
			// to the same test.
		case errors.Is(err, io.EOF):
			return p.tests, nil
		default:
			return p.tests, err
		}
	}
}

type parser struct {
	tests   []*Test
	byName  map[string]*Test
	current string // the test output belongs to; "" for the package
}

func (p *parser) line(line []byte) {
	i := bytes.IndexByte(line, marker)
	if i < 0 {
		p.output(line)
		return
	}
	if i > 0 {
		// Output without a newline, then framing.
		p.output(line[:i])
	}
	frame := strings.TrimRight(string(line[i+1:]), "\r\n")
	for _, prefix := range []string{"=== RUN   ", "=== PAUSE ", "=== CONT  ", "=== NAME  "} {
		if name, ok := strings.CutPrefix(frame, prefix); ok {
			p.current = name
			if prefix == "=== RUN   " {
				p.run(name)
			}
			p.output([]byte(frame + "\n"))
			return
		}
	}
	if frame == "=== NAME" || frame == "=== NAME  " {
		p.current = ""
		return
	}
	for _, v := range []struct{ prefix, verdict string }{
		{"--- PASS: ", Pass}, {"--- FAIL: ", Fail}, {"--- SKIP: ", Skip}, {"--- BENCH: ", Pass},
	} {
		rest, ok := strings.CutPrefix(frame, v.prefix)
		if !ok {
			continue
		}
		name, elapsed := splitElapsed(rest)
		p.current = name
		p.output([]byte(frame + "\n"))
		p.end(name, v.verdict, elapsed)
		return
	}
	// PASS, FAIL, ok: the package's own lines.
	p.current = ""
}

// splitElapsed splits "TestX (0.01s)" into its name and seconds.
func splitElapsed(s string) (string, float64) {
	i := strings.LastIndex(s, " (")
	if i < 0 || !strings.HasSuffix(s, "s)") {
		return s, 0
	}
	secs, err := strconv.ParseFloat(s[i+2:len(s)-2], 64)
	if err != nil {
		return s, 0
	}
	return s[:i], secs
}

func (p *parser) test(name string) *Test {
	t, ok := p.byName[name]
	if !ok {
		if len(p.tests) >= maxTests {
			return nil
		}
		t = &Test{Name: name}
		p.byName[name] = t
		p.tests = append(p.tests, t)
	}
	return t
}

func (p *parser) run(name string) {
	if t := p.test(name); t != nil {
		t.Runs++
		t.Verdict = Unfinished
	}
}

func (p *parser) end(name, verdict string, elapsed float64) {
	t := p.test(name)
	if t == nil {
		return
	}
	if t.Runs == 0 {
		t.Runs = 1 // a report without its RUN line
	}
	t.Elapsed += elapsed
	switch verdict {
	case Fail:
		t.Fails++
	case Skip:
		t.Skips++
	}
	// Over several runs: failed if any failed, skipped if all skipped.
	switch {
	case t.Fails > 0:
		t.Verdict = Fail
	case t.Skips == t.Runs:
		t.Verdict = Skip
	default:
		t.Verdict = Pass
	}
}

func (p *parser) output(b []byte) {
	if p.current == "" {
		return
	}
	t := p.byName[p.current]
	if t == nil {
		return
	}
	t.Output = append(t.Output, b...)
	if over := len(t.Output) - MaxTestOutput; over > 0 {
		t.Output = append(t.Output[:0], t.Output[over:]...)
		t.Truncated = true
	}
}

// Message is a one-line summary of t's output for a report: its first line
// that is not framing ("x_test.go:12: want 3, got 4", "panic: boom").
func (t *Test) Message() string {
	for _, l := range strings.Split(string(t.Output), "\n") {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		return s
	}
	return ""
}

// Crash is the first line of t's output that says why a binary died
// ("panic: test timed out after 1s", "fatal error: ..."), or "".
func (t *Test) Crash() string {
	for _, l := range strings.Split(string(t.Output), "\n") {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
