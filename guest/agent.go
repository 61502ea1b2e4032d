package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"runtime/debug"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// Default bounds on what the agent waits for.
const (
	PortTimeout         = 10 * time.Second
	PlanTimeout         = 60 * time.Second
	ByeTimeout          = 5 * time.Second
	DefaultCheckTimeout = 5 * time.Minute
)

// Agent runs one plan over a connection to the host.
type Agent struct {
	// Ready is sent first.
	Ready protocol.Ready
	// Notes go into Ready (protocol.Ready.Notes): what went wrong before
	// the port was open, such as modules that failed to load. Past
	// protocol's bounds they are cut.
	Notes []protocol.Log
	// Checks maps check names to implementations; nil means the agent's
	// own registry, from protocol's table.
	Checks map[string]Check
	// Log receives the agent's own logging; nil discards it.
	Log *log.Logger
	// PlanTimeout and ByeTimeout default to the package constants.
	PlanTimeout, ByeTimeout time.Duration
	// SetClock and AddEntropy apply a plan's host state; nil means the
	// guest's own (setWallClock, addHostEntropy: the wall clock, the
	// kernel's random pool).
	SetClock   func(time.Time) error
	AddEntropy func([]byte) error
	// FilesRoot is where a plan's files are written: "" is "/".
	FilesRoot string

	// sink takes the data of the file being received (Run sets it).
	sink *fileSink
}

// Converse is what the agent does once its port is open: Agent.Run, for
// the real agent. A guest that misbehaves on purpose, to test the host,
// puts its own here (internal/testsupport/hostileagent).
type Converse func(ctx context.Context, a *Agent, port io.ReadWriter) error

// incoming is one message from the host, or the error that ended the
// stream, and when it was read.
type incoming struct {
	msg protocol.Message
	err error
	at  time.Time
}

// Run speaks the protocol over conn: ready, plan, its files, prepared, the
// checks, done, bye; after a plan with More, another plan may come instead
// of bye. It returns an error when the exchange cannot complete; a host
// that never says bye is logged but is not an error, since everything has
// been sent.
func (a *Agent) Run(ctx context.Context, conn io.ReadWriter) error {
	logger := a.Log
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	enc := protocol.NewEncoder(conn)
	setRawPort(conn)
	defer setRawPort(nil)
	ready := a.Ready
	ready.Notes = boundNotes(a.Notes)
	if err := enc.Send(protocol.Message{Type: protocol.TypeReady, Ready: &ready}); err != nil {
		return fmt.Errorf("send ready: %w", err)
	}

	// Read only once ready is out: a virtio port reads EOF until the host
	// is connected, and the first write waits for that.
	from := make(chan incoming, 1)
	a.sink = &fileSink{}
	dec := protocol.NewDecoder(conn)
	dec.FileData = a.sink.place
	go func() {
		for {
			m, err := dec.Next()
			select {
			case from <- incoming{m, err, time.Now()}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	in, err := receive(ctx, from, or(a.PlanTimeout, PlanTimeout))
	if err != nil {
		return fmt.Errorf("wait for plan: %w", err)
	}
	for {
		if in.msg.Type != protocol.TypePlan {
			return fmt.Errorf("wait for plan: got %s message", in.msg.Type)
		}
		plan := in.msg.Plan
		if err := a.runPlan(ctx, enc, from, plan, in.at, logger); err != nil {
			return err
		}
		if !plan.More {
			break
		}
		// The host may come back with another plan at any time (repro
		// --watch), or say bye, or go away.
		in, err = receive(ctx, from, 0)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			logger.Print("host went away between plans")
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for the next plan: %w", err)
		}
		if in.msg.Type == protocol.TypeBye {
			return nil
		}
	}

	in, err = receive(ctx, from, or(a.ByeTimeout, ByeTimeout))
	switch {
	case err != nil:
		logger.Printf("no bye from host: %v", err)
	case in.msg.Type != protocol.TypeBye:
		logger.Printf("expected bye, got %s message", in.msg.Type)
	}
	return nil
}

// boundNotes cuts notes to what a ready message may carry.
func boundNotes(notes []protocol.Log) []protocol.Log {
	if len(notes) > protocol.MaxNotes {
		notes = append(notes[:protocol.MaxNotes-1:protocol.MaxNotes-1],
			protocol.Log{Level: "warn", Text: fmt.Sprintf("%d more notes left out", len(notes)-protocol.MaxNotes+1)})
	}
	out := make([]protocol.Log, len(notes))
	for i, n := range notes {
		if len(n.Text) > protocol.MaxNoteBytes {
			n.Text = text.Truncate(n.Text, protocol.MaxNoteBytes-4)
		}
		if len(n.Level) > 16 {
			n.Level = n.Level[:16]
		}
		out[i] = n
	}
	return out
}

// runPlan takes the plan's host state and files, says prepared, runs the
// checks and says done. received is when the plan was read.
func (a *Agent) runPlan(ctx context.Context, enc *protocol.Encoder, from <-chan incoming, plan *protocol.Plan, received time.Time, logger *log.Logger) error {
	logger.Printf("plan: %d checks, %d files", len(plan.Checks), len(plan.Files))
	if plan.Host != nil {
		prep, err := a.prepare(ctx, from, plan, received)
		if err != nil {
			// Said on the channel too: the host shows it with the VM's error.
			_ = enc.Send(protocol.Message{Type: protocol.TypeLog, Log: &protocol.Log{Level: "error", Text: err.Error()}})
			return err
		}
		// The time since the plan was read is the guest's part of the
		// host's plan → prepared (after a restore, TCG translates every
		// code path anew).
		logger.Printf("prepared: %s boot, clock moved %d ms, %d bytes of entropy, %d files (%d bytes), %d ms after the plan",
			prep.Boot, prep.ClockStepMS, prep.EntropyBytes, prep.Files, prep.FileBytes, time.Since(received).Milliseconds())
		if err := enc.Send(protocol.Message{Type: protocol.TypePrepared, Prepared: prep}); err != nil {
			return fmt.Errorf("send prepared: %w", err)
		}
	} else if len(plan.Files)+len(plan.Dirs) > 0 {
		if _, err := a.receiveFiles(ctx, from, plan); err != nil {
			return err
		}
	}

	sent := 0 // results sent: done says how many, and the host checks
	for _, spec := range plan.Checks {
		if err := enc.Send(protocol.Message{Type: protocol.TypeCheckStart, CheckStart: &protocol.CheckStart{Check: spec.Name}}); err != nil {
			return fmt.Errorf("send check-start: %w", err)
		}
		res, o, streamed := a.runCheck(ctx, enc, spec, logger)
		sent += streamed
		n, err := sendOutcome(enc, spec.Name, o)
		sent += n
		if err != nil {
			return err
		}
		if res.Status == "" && (len(o.Sub) > 0 || streamed > 0) {
			continue // the sub-results are the report
		}
		logger.Printf("check %s: %s %s (%d ms)", res.Check, res.Status, res.Message, res.DurationMS)
		if err := sendResult(enc, res); err != nil {
			return err
		}
		sent++
	}
	if err := enc.Send(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{Results: sent}}); err != nil {
		return fmt.Errorf("send done: %w", err)
	}
	return nil
}

// receive waits up to timeout for the next message; 0 waits as long as
// the host is connected.
func receive(ctx context.Context, from <-chan incoming, timeout time.Duration) (incoming, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case in := <-from:
		if errors.Is(in.err, io.EOF) {
			return incoming{}, io.ErrUnexpectedEOF
		}
		return in, in.err
	case <-expired:
		return incoming{}, fmt.Errorf("timed out after %s", timeout)
	case <-ctx.Done():
		return incoming{}, ctx.Err()
	}
}

// sendResult sends res, replacing details that do not fit in a message by
// an error saying so.
func sendResult(enc *protocol.Encoder, res protocol.Result) error {
	err := enc.Send(protocol.Message{Type: protocol.TypeResult, Result: &res})
	if errors.Is(err, protocol.ErrTooLarge) {
		res.Status = protocol.StatusError
		res.Message = fmt.Sprintf("result too large to send (%d bytes of details)", len(res.Details))
		res.Details = nil
		err = enc.Send(protocol.Message{Type: protocol.TypeResult, Result: &res})
	}
	if err != nil {
		return fmt.Errorf("send result: %w", err)
	}
	return nil
}

// sendOutcome sends a check's artifacts, then its sub-results; only names
// under the check's own are sent. It returns the number of results sent.
func sendOutcome(enc *protocol.Encoder, check string, o Outcome) (int, error) {
	for _, art := range o.Artifacts {
		if !strings.HasPrefix(art.Check, check+"/") && art.Check != check {
			continue
		}
		if err := enc.Send(protocol.Message{Type: protocol.TypeArtifact, Artifact: &art}); err != nil {
			return 0, fmt.Errorf("send artifact: %w", err)
		}
	}
	sent := 0
	for _, r := range o.Sub {
		if !strings.HasPrefix(r.Check, check+"/") {
			continue
		}
		if err := sendResult(enc, r); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// runCheck runs one check under its timeout, with a stream for the results
// it sends as it goes, and returns how many went that way. A check that
// overruns is left behind: it cannot be killed, and the VM powers off soon
// anyway; its stream is closed so that it sends nothing more.
func (a *Agent) runCheck(ctx context.Context, enc *protocol.Encoder, spec protocol.CheckSpec, logger *log.Logger) (protocol.Result, Outcome, int) {
	start := time.Now()
	res := protocol.Result{Check: spec.Name}

	var check Check
	var ok bool
	if a.Checks != nil {
		check, ok = a.Checks[spec.Name]
	} else {
		check, ok = agentChecks.Lookup(spec.Name)
	}
	if !ok {
		res.Status, res.Message = protocol.StatusError, fmt.Sprintf("unknown check %q", spec.Name)
		res.DurationMS = time.Since(start).Milliseconds()
		return res, Outcome{}, 0
	}

	timeout := time.Duration(spec.Timeout)
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st := &stream{enc: enc, check: spec.Name}
	ctx = withStream(ctx, st)

	type outcome struct {
		Outcome
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				logger.Printf("check %s panicked: %v\n%s", spec.Name, p, debug.Stack())
				done <- outcome{err: fmt.Errorf("check panicked: %v", p)}
			}
		}()
		o, err := check(ctx, spec.Params)
		done <- outcome{o, err}
	}()

	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		o.err = ctx.Err()
		if errors.Is(o.err, context.DeadlineExceeded) {
			o.err = fmt.Errorf("timed out after %s", timeout)
		}
	}
	streamed := st.close()

	res.Status, res.Message = o.Status, o.Message
	if o.Status == "" && (len(o.Sub) > 0 || streamed > 0) && o.err == nil {
		return res, o.Outcome, streamed
	}
	if o.err != nil {
		res.Status, res.Message = protocol.StatusError, o.err.Error()
	}
	if !res.Status.Valid() {
		res.Status, res.Message = protocol.StatusError, fmt.Sprintf("check returned invalid status %q", o.Status)
	}
	if o.Details != nil {
		details, err := json.Marshal(o.Details)
		if err != nil {
			res.Status, res.Message = protocol.StatusError, fmt.Sprintf("encode details: %v", err)
		} else {
			res.Details = details
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, o.Outcome, streamed
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
