package guest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vmrunner/vmrunner/protocol"
)

// stream sends a check's sub-results, artifacts and progress logs to the
// host while the check runs, so that a VM that dies later loses none of
// them and the agent holds none of them. The agent gives one to each check
// through its context; once the check is over (or has overrun its
// timeout), the stream is closed and drops what a left-behind check still
// sends.
type stream struct {
	mu     sync.Mutex
	enc    *protocol.Encoder
	check  string
	closed bool
	sent   int // results sent
}

type streamKey struct{}

var errStreamClosed = errors.New("check is over: result not sent")

// withStream returns ctx carrying s.
func withStream(ctx context.Context, s *stream) context.Context {
	return context.WithValue(ctx, streamKey{}, s)
}

// streamFrom returns the check's stream, nil when the check runs outside
// an agent (unit tests): it then returns what it found in its Outcome.
func streamFrom(ctx context.Context) *stream {
	s, _ := ctx.Value(streamKey{}).(*stream)
	return s
}

// result sends one sub-result, after its artifacts. Names outside the
// check's own are refused, as sendOutcome does.
func (s *stream) result(res protocol.Result, arts ...protocol.Artifact) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStreamClosed
	}
	if !strings.HasPrefix(res.Check, s.check+"/") {
		return fmt.Errorf("result %q is not under check %q", res.Check, s.check)
	}
	for _, art := range arts {
		if !strings.HasPrefix(art.Check, s.check+"/") {
			continue
		}
		if err := s.enc.Send(protocol.Message{Type: protocol.TypeArtifact, Artifact: &art}); err != nil {
			return fmt.Errorf("send artifact: %w", err)
		}
	}
	if err := sendResult(s.enc, res); err != nil {
		return err
	}
	s.sent++
	return nil
}

// log sends a line of progress.
func (s *stream) log(level, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	_ = s.enc.Send(protocol.Message{Type: protocol.TypeLog, Log: &protocol.Log{Level: level, Text: text}})
}

// close ends the stream and returns how many results went through it.
func (s *stream) close() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.sent
}

// emit reports one sub-result: through the check's stream when it has
// one, else into o.
func emit(ctx context.Context, o *Outcome, res protocol.Result, arts ...protocol.Artifact) error {
	if s := streamFrom(ctx); s != nil {
		return s.result(res, arts...)
	}
	o.Sub = append(o.Sub, res)
	o.Artifacts = append(o.Artifacts, arts...)
	return nil
}

// progress sends a log line through the check's stream, if it has one.
func progress(ctx context.Context, text string) {
	if s := streamFrom(ctx); s != nil {
		s.log(protocol.LogProgress, text)
	}
}
