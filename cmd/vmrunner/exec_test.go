package main

import (
	"bytes"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func TestExecExitCode(t *testing.T) {
	run := func(code int, kind results.ErrorKind) runner.ExecRun {
		return runner.ExecRun{ExitCode: code, Record: results.Record{ErrorKind: kind}}
	}
	vmFailed := func(code int) runner.ExecRun {
		r := run(code, "")
		r.VMErr = &results.Record{Check: results.VMCheck, Status: protocol.StatusError, ErrorKind: results.KindProtocol, Message: "output message after done"}
		return r
	}
	for _, tc := range []struct {
		name string
		res  runner.ExecResult
		want int
	}{
		{"one VM: its status", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(7, "")}}, 7},
		{"one VM, signal", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(139, "")}}, 139},
		{"one VM failed", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(-1, results.KindTimeout)}}, 3},
		{"all zero", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(0, ""), run(0, "")}}, 0},
		{"one nonzero of two", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(0, ""), run(2, "")}}, 1},
		{"a VM failed, another exited 1", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(1, ""), run(-1, results.KindPanic)}}, 3},
		{"bad kernel source", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(-1, results.KindBadInput), run(-1, results.KindPanic)}}, 2},
		{"interrupted", runner.ExecResult{Result: &runner.Result{ExitCode: 130}, Runs: []runner.ExecRun{run(-1, results.KindInterrupted)}}, 130},
		// The program exited 0 and then its VM failed (a protocol error
		// after done, a panic, no power-off): the VM's record counts.
		{"one VM exited 0, then its VM failed", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{vmFailed(0)}}, 3},
		{"one VM exited 1, then its VM failed", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{vmFailed(1)}}, 3},
		{"two VMs, one failed after its program", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(0, ""), vmFailed(0)}}, 3},
		{"output dropped, program exited 0", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{{ExitCode: 0, Dropped: 2_080_374_784}}}, 3},
		{"output dropped on one of two", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{run(0, ""), {ExitCode: 1, Dropped: 1}}}, 3},
		{"bad input outranks a VM failure", runner.ExecResult{Result: &runner.Result{}, Runs: []runner.ExecRun{vmFailed(0), run(-1, results.KindBadInput)}}, 2},
	} {
		if got := execExitCode(&tc.res); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestExecOutput(t *testing.T) {
	a := matrix.Target{Kernel: matrix.KernelEntry{Name: "6.1"}, Arch: kernels.X86_64}
	b := matrix.Target{Kernel: matrix.KernelEntry{Name: "5.10"}, Arch: kernels.X86_64}
	out := func(s protocol.Stream, d string) protocol.Output { return protocol.Output{Stream: s, Data: []byte(d)} }

	var stdout, stderr bytes.Buffer
	raw := newExecOutput(&stdout, &stderr, false)
	raw.write(a, out(protocol.Stdout, "no newline"))
	raw.write(a, out(protocol.Stderr, "err\n"))
	raw.flush()
	if stdout.String() != "no newline" || stderr.String() != "err\n" {
		t.Errorf("one VM: stdout %q stderr %q, want them untouched", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	pre := newExecOutput(&stdout, &stderr, true)
	pre.write(a, out(protocol.Stdout, "hel"))
	pre.write(b, out(protocol.Stdout, "other\nsecond "))
	pre.write(a, out(protocol.Stdout, "lo\nworld\n"))
	pre.write(b, out(protocol.Stderr, "oops\n"))
	pre.flush()
	want := "[5.10/x86_64] other\n[6.1/x86_64] hello\n[6.1/x86_64] world\n[5.10/x86_64] second \n"
	if stdout.String() != want || stderr.String() != "[5.10/x86_64] oops\n" {
		t.Errorf("several VMs:\nstdout %q\nwant   %q\nstderr %q", stdout.String(), want, stderr.String())
	}
}

// With several VMs a line without end is held to maxPartialLine bytes and
// written in pieces of that size: nothing is lost, memory stays bounded.
func TestExecOutputLongLine(t *testing.T) {
	a := matrix.Target{Kernel: matrix.KernelEntry{Name: "6.1"}, Arch: kernels.X86_64}
	var stdout, stderr bytes.Buffer
	pre := newExecOutput(&stdout, &stderr, true)
	piece := bytes.Repeat([]byte("x"), protocol.MaxOutputChunk)
	for range 5 {
		pre.write(a, protocol.Output{Stream: protocol.Stdout, Data: piece})
		if held := pre.partial["6.1/x86_64 stdout"].Len(); held > maxPartialLine {
			t.Fatalf("holding %d bytes of a line, more than %d", held, maxPartialLine)
		}
	}
	pre.write(a, protocol.Output{Stream: protocol.Stdout, Data: []byte("end\n")})
	pre.flush()
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var got strings.Builder
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "[6.1/x86_64] ")
		if !ok || len(rest) > maxPartialLine+len("end") {
			t.Fatalf("line %.40q… of %d bytes", l, len(l))
		}
		got.WriteString(rest)
	}
	if want := strings.Repeat("x", 5*protocol.MaxOutputChunk) + "end"; got.String() != want {
		t.Errorf("passed on %d bytes, want %d", got.Len(), len(want))
	}
	if pre.passed["6.1/x86_64"] != 5*protocol.MaxOutputChunk+4 {
		t.Errorf("counted %d bytes passed on", pre.passed["6.1/x86_64"])
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64M": 64 << 20, "1G": 1 << 30, "512MiB": 512 << 20, "100": 100, "2k": 2048} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1M", "0"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
