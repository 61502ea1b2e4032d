package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vmrunner/vmrunner/protocol"
)

// host is the host end of a pipe pair connected to an agent.
type host struct {
	t   *testing.T
	dec *protocol.Decoder
	enc *protocol.Encoder
	w   *io.PipeWriter
}

// startAgent runs a on a pipe pair and returns the host end and the
// agent's eventual error.
func startAgent(t *testing.T, a *Agent) (*host, <-chan error) {
	t.Helper()
	guestR, hostW := io.Pipe()
	hostR, guestW := io.Pipe()
	conn := struct {
		io.Reader
		io.Writer
	}{guestR, guestW}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- a.Run(ctx, conn)
		guestW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		hostW.Close()
		hostR.Close()
	})
	return &host{t, protocol.NewDecoder(hostR), protocol.NewEncoder(hostW), hostW}, errc
}

func (h *host) expect(typ protocol.Type) protocol.Message {
	h.t.Helper()
	m, err := h.dec.Next()
	if err != nil {
		h.t.Fatalf("want %s message: %v", typ, err)
	}
	if m.Type != typ {
		h.t.Fatalf("got %s message, want %s: %+v", m.Type, typ, m)
	}
	return m
}

func (h *host) send(m protocol.Message) {
	h.t.Helper()
	if err := h.enc.Send(m); err != nil {
		h.t.Fatal(err)
	}
}

func wait(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not finish")
		return nil
	}
}

func TestAgentPlan(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	a := &Agent{
		Ready: protocol.Ready{Agent: "test", KernelRelease: "6.1.0", Machine: "x86_64", UptimeMS: 1234},
		Notes: []protocol.Log{{Level: "error", Text: "load module /lib/x.ko: exec format error"}},
		Checks: map[string]Check{
			"ok": func(ctx context.Context, params json.RawMessage) (Outcome, error) {
				var p struct{ Want string }
				if err := decodeParams(params, &p); err != nil {
					return Outcome{}, err
				}
				return Outcome{Status: protocol.StatusPass, Message: p.Want, Details: map[string]int{"n": 3}}, nil
			},
			// Ignores its context: the runner must still move on.
			"stuck": func(context.Context, json.RawMessage) (Outcome, error) {
				<-release
				return Outcome{Status: protocol.StatusPass}, nil
			},
			"panics": func(context.Context, json.RawMessage) (Outcome, error) {
				panic("boom")
			},
			"broken": func(context.Context, json.RawMessage) (Outcome, error) {
				return Outcome{Details: "partial"}, errors.New("read thing: permission denied")
			},
			"fails": func(context.Context, json.RawMessage) (Outcome, error) {
				return Outcome{Status: protocol.StatusFail, Message: "missing BTF types: foo"}, nil
			},
		},
	}
	h, errc := startAgent(t, a)

	ready := h.expect(protocol.TypeReady).Ready
	notes := ready.Notes
	ready.Notes = nil
	if !reflect.DeepEqual(*ready, a.Ready) {
		t.Errorf("ready = %+v, want %+v", *ready, a.Ready)
	}
	// The notes travel in ready: nothing follows it until the plan.
	if len(notes) != 1 || notes[0].Level != "error" || !strings.Contains(notes[0].Text, "x.ko") {
		t.Errorf("notes = %+v", notes)
	}

	d := func(s string) protocol.Duration { v, _ := time.ParseDuration(s); return protocol.Duration(v) }
	plan := []protocol.CheckSpec{
		{Name: "ok", Params: json.RawMessage(`{"Want":"hello"}`), Timeout: d("1s")},
		{Name: "stuck", Timeout: d("50ms")},
		{Name: "panics", Timeout: d("1s")},
		{Name: "nope", Timeout: d("1s")},
		{Name: "broken", Timeout: d("1s")},
		{Name: "fails"},
		{Name: "ok", Params: json.RawMessage(`{"Typo":1}`), Timeout: d("1s")},
	}
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{Checks: plan}})

	want := []struct {
		status  protocol.Status
		message string
	}{
		{protocol.StatusPass, "hello"},
		{protocol.StatusError, "timed out after 50ms"},
		{protocol.StatusError, "check panicked: boom"},
		{protocol.StatusError, `unknown check "nope"`},
		{protocol.StatusError, "read thing: permission denied"},
		{protocol.StatusFail, "missing BTF types: foo"},
		{protocol.StatusError, `decode params: json: unknown field "Typo"`},
	}
	for i, spec := range plan {
		if s := h.expect(protocol.TypeCheckStart).CheckStart; s.Check != spec.Name {
			t.Errorf("check-start %d: %q, want %q", i, s.Check, spec.Name)
		}
		r := h.expect(protocol.TypeResult).Result
		if r.Check != spec.Name || r.Status != want[i].status || r.Message != want[i].message {
			t.Errorf("result %d = %s %s %q, want %s %q", i, r.Check, r.Status, r.Message, want[i].status, want[i].message)
		}
		switch spec.Name {
		case "ok":
			if i == 0 && string(r.Details) != `{"n":3}` {
				t.Errorf("details = %s", r.Details)
			}
		case "stuck":
			if r.DurationMS < 50 || r.DurationMS > 2000 {
				t.Errorf("timed-out check took %d ms", r.DurationMS)
			}
		case "broken":
			if string(r.Details) != `"partial"` {
				t.Errorf("details of a broken check = %s", r.Details)
			}
		}
	}
	if done := h.expect(protocol.TypeDone).Done; done.Results != len(plan) {
		t.Errorf("done.results = %d", done.Results)
	}
	h.send(protocol.Message{Type: protocol.TypeBye})
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}

func TestAgentNoBye(t *testing.T) {
	h, errc := startAgent(t, &Agent{ByeTimeout: 50 * time.Millisecond})
	h.expect(protocol.TypeReady)
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{}})
	if done := h.expect(protocol.TypeDone).Done; done.Results != 0 {
		t.Errorf("done = %+v", done)
	}
	// Everything was sent; a silent host is not the agent's failure.
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}

func TestAgentPlanErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		h, errc := startAgent(t, &Agent{PlanTimeout: 50 * time.Millisecond})
		h.expect(protocol.TypeReady)
		err := wait(t, errc)
		if err == nil || !strings.Contains(err.Error(), "wait for plan: timed out after 50ms") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("hangup", func(t *testing.T) {
		h, errc := startAgent(t, &Agent{})
		h.expect(protocol.TypeReady)
		h.w.Close()
		if err := wait(t, errc); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want unexpected EOF", err)
		}
	})
	t.Run("not a plan", func(t *testing.T) {
		h, errc := startAgent(t, &Agent{})
		h.expect(protocol.TypeReady)
		h.send(protocol.Message{Type: protocol.TypeBye})
		if err := wait(t, errc); err == nil || !strings.Contains(err.Error(), "got bye") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		h, errc := startAgent(t, &Agent{})
		h.expect(protocol.TypeReady)
		io.WriteString(h.w, "{\"v\":1,\"type\":\"plan\",\"plan\":{\"checks\":[{\"name\":1}]}}\n")
		if err := wait(t, errc); !errors.Is(err, protocol.ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
	})
}

func TestAgentResultTooLarge(t *testing.T) {
	big := strings.Repeat("x", protocol.MaxMessageSize)
	h, errc := startAgent(t, &Agent{Checks: map[string]Check{
		"big": func(context.Context, json.RawMessage) (Outcome, error) {
			return Outcome{Status: protocol.StatusPass, Details: big}, nil
		},
	}})
	h.expect(protocol.TypeReady)
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{Checks: []protocol.CheckSpec{{Name: "big"}}}})
	h.expect(protocol.TypeCheckStart)
	r := h.expect(protocol.TypeResult).Result
	if r.Status != protocol.StatusError || !strings.Contains(r.Message, "too large") || r.Details != nil {
		t.Errorf("result = %s %q (%d bytes of details)", r.Status, r.Message, len(r.Details))
	}
	h.expect(protocol.TypeDone)
	h.send(protocol.Message{Type: protocol.TypeBye})
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}

// Notes past the protocol's bounds are cut, not a reason to fail.
func TestAgentNotesBounded(t *testing.T) {
	notes := make([]protocol.Log, protocol.MaxNotes+10)
	for i := range notes {
		notes[i] = protocol.Log{Level: "error", Text: strings.Repeat("é", protocol.MaxNoteBytes)}
	}
	h, errc := startAgent(t, &Agent{Notes: notes, PlanTimeout: 50 * time.Millisecond})
	got := h.expect(protocol.TypeReady).Ready.Notes
	if len(got) != protocol.MaxNotes || !strings.Contains(got[len(got)-1].Text, "11 more notes left out") {
		t.Errorf("%d notes, the last %q", len(got), got[len(got)-1].Text)
	}
	for _, n := range got {
		if len(n.Text) > protocol.MaxNoteBytes || !utf8.ValidString(n.Text) {
			t.Fatalf("note of %d bytes", len(n.Text))
		}
	}
	_ = wait(t, errc) // no plan: it times out
}

// decodeParams decodes a test check's parameters strictly into v; empty or
// null parameters leave v as it is.
func decodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 || string(params) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	return nil
}

// TestAgentStream checks that a check's streamed results reach the host
// while the check still runs, and that a check left behind by its timeout
// can send nothing more.
func TestAgentStream(t *testing.T) {
	got := make(chan struct{})
	late := make(chan error, 1)
	release := make(chan struct{})
	defer close(release)
	h, errc := startAgent(t, &Agent{Checks: map[string]Check{
		"streams": func(ctx context.Context, _ json.RawMessage) (Outcome, error) {
			var o Outcome
			art := protocol.Artifact{Check: "streams/a", Name: "streams/a.log", Data: "log of a"}
			if err := emit(ctx, &o, protocol.Result{Check: "streams/a", Status: protocol.StatusPass}, art); err != nil {
				return o, err
			}
			progress(ctx, "still going")
			<-got // the host has a, and the check is not over
			if err := emit(ctx, &o, protocol.Result{Check: "other/b", Status: protocol.StatusPass}); err == nil {
				return o, errors.New("a result outside the check was sent")
			}
			return o, emit(ctx, &o, protocol.Result{Check: "streams/b", Status: protocol.StatusFail})
		},
		"overruns": func(ctx context.Context, _ json.RawMessage) (Outcome, error) {
			var o Outcome
			<-release
			late <- emit(ctx, &o, protocol.Result{Check: "overruns/late", Status: protocol.StatusPass})
			return o, nil
		},
	}})
	h.expect(protocol.TypeReady)
	d := protocol.Duration(50 * time.Millisecond)
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{Checks: []protocol.CheckSpec{
		{Name: "streams"}, {Name: "overruns", Timeout: d},
	}}})
	h.expect(protocol.TypeCheckStart)
	if a := h.expect(protocol.TypeArtifact).Artifact; a.Name != "streams/a.log" {
		t.Errorf("artifact %+v", a)
	}
	if r := h.expect(protocol.TypeResult).Result; r.Check != "streams/a" || r.Status != protocol.StatusPass {
		t.Errorf("first result %+v", r)
	}
	if l := h.expect(protocol.TypeLog).Log; l.Text != "still going" || l.Level != protocol.LogProgress {
		t.Errorf("progress %+v", l)
	}
	close(got)
	if r := h.expect(protocol.TypeResult).Result; r.Check != "streams/b" || r.Status != protocol.StatusFail {
		t.Errorf("second result %+v", r)
	}
	h.expect(protocol.TypeCheckStart)
	if r := h.expect(protocol.TypeResult).Result; r.Check != "overruns" || r.Status != protocol.StatusError {
		t.Errorf("overrun %+v", r)
	}
	h.expect(protocol.TypeDone)
	release <- struct{}{}
	if err := <-late; !errors.Is(err, errStreamClosed) {
		t.Errorf("late emit: %v, want errStreamClosed", err)
	}
	h.send(protocol.Message{Type: protocol.TypeBye})
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}
