package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func init() { agentChecks.Add(protocol.TestCheck.Def(), checkTest) }

// checkTest runs the user's program (vmrunner exec, the test check of
// matrix.yaml) and reports its exit status as the result test/<name>: pass
// on 0, fail otherwise. Its output goes to the host as it comes, through the
// check's stream; the host turns Go test output into one result per
// test. The program is stopped a little before the check's own timeout, so
// that the check, not the agent's watchdog, reports the hang, after a task
// dump on the console.
func checkTest(ctx context.Context, params json.RawMessage) (Outcome, error) {
	var send func(protocol.Output) error
	if s := streamFrom(ctx); s != nil {
		send = s.output
	}
	return checkTestWith(ctx, params, send)
}

// checkTestWith is checkTest with the program's output going to send.
func checkTestWith(ctx context.Context, params json.RawMessage, send func(protocol.Output) error) (Outcome, error) {
	p, err := protocol.TestCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	if p.MaxOutput == 0 {
		p.MaxOutput = protocol.DefaultMaxOutput
	}
	name := "test/" + p.Name
	if p.Format == protocol.FormatGo {
		// As go test -json runs a test binary: framing the host reads,
		// and os.Exit(0) from a test counted as a failure. Last, so
		// that they win over the same flags in Args.
		p.Args = append(append([]string(nil), p.Args...), protocol.GoTestFlags...)
	}
	start := time.Now()
	run, err := runProgram(ctx, p, name, send, stopMargin(ctx))
	res := protocol.Result{Check: name, DurationMS: time.Since(start).Milliseconds()}
	d := protocol.TestDetails{ExitCode: run.exitCode, Signal: run.signal,
		StdoutBytes: run.stdout, StderrBytes: run.stderr, Dropped: run.dropped}
	switch {
	case err != nil:
		res.Status, res.Message = protocol.StatusError, err.Error()
	case run.exitCode == 0:
		res.Status, res.Message = protocol.StatusPass, "exit status 0"
	case run.signal != "":
		res.Status, res.Message = protocol.StatusFail, fmt.Sprintf("killed by %s (exit status %d)", run.signal, run.exitCode)
	default:
		res.Status, res.Message = protocol.StatusFail, fmt.Sprintf("exit status %d", run.exitCode)
	}
	if run.dropped > 0 {
		res.Message += fmt.Sprintf("; %d bytes of output past the %d-byte limit were dropped", run.dropped, p.MaxOutput)
	}
	details, derr := json.Marshal(d)
	if derr != nil {
		return Outcome{}, fmt.Errorf("test: encode details: %w", derr)
	}
	res.Details = details
	return Outcome{Sub: []protocol.Result{res}}, nil
}

// programRun is what became of a program.
type programRun struct {
	exitCode       int    // as a shell reports it; -1 when it did not end
	signal         string // the signal that killed it
	stdout, stderr int64
	dropped        int64
}

// stopMargin is how long before the check's deadline the program is
// stopped (protocol.TestStopMargin).
func stopMargin(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return protocol.TestStopMargin(time.Until(dl))
}
