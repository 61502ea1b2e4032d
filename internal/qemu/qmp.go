package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Event is the part of a QMP event vmrunner acts on.
type Event struct {
	Name   string
	Reason string // SHUTDOWN reason, GUEST_PANICKED action
}

// monitor wraps a go-qemu QMP connection whose events are drained in their
// own goroutine from the moment it connects: go-qemu delivers events on an
// unbuffered channel, and an undrained channel would block command replies.
type monitor struct {
	mon    *qmp.SocketMonitor
	events chan Event
	done   chan struct{}
}

// dialMonitor connects to a QMP socket that QEMU opens with server=on,wait=on,
// retrying until it appears, ctx ends or exited is closed.
func dialMonitor(ctx context.Context, path string, exited <-chan struct{}) (*monitor, error) {
	mon, err := dialRetry(ctx, exited, func() (*qmp.SocketMonitor, error) { return qmp.NewSocketMonitor("unix", path, time.Second) })
	if err != nil {
		return nil, fmt.Errorf("connect QMP: %w", err)
	}
	if err := mon.Connect(); err != nil {
		_ = mon.Disconnect()
		return nil, fmt.Errorf("connect QMP: %w", err)
	}
	raw, err := mon.Events(ctx)
	if err != nil {
		_ = mon.Disconnect()
		return nil, fmt.Errorf("subscribe QMP events: %w", err)
	}
	m := &monitor{mon: mon, events: make(chan Event, 64), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer close(m.events)
		for e := range raw {
			ev := Event{Name: e.Event}
			if r, ok := e.Data["reason"].(string); ok {
				ev.Reason = r
			}
			if a, ok := e.Data["action"].(string); ok && ev.Reason == "" {
				ev.Reason = a
			}
			select {
			case m.events <- ev:
			default: // nobody is listening any more; keep draining
			}
		}
	}()
	return m, nil
}

// run executes a QMP command without arguments.
func (m *monitor) run(cmd string, timeout time.Duration) error {
	_, err := m.call(cmd, nil, timeout)
	return err
}

// call executes a QMP command and returns its reply's "return" value.
// go-qemu waits for the reply without a deadline, so the wait is bounded
// here; a reply that comes later is collected when close disconnects.
func (m *monitor) call(cmd string, args any, timeout time.Duration) (json.RawMessage, error) {
	b, err := json.Marshal(qmp.Command{Execute: cmd, Args: args})
	if err != nil {
		return nil, err
	}
	type reply struct {
		b   []byte
		err error
	}
	c := make(chan reply, 1)
	go func() {
		b, err := m.mon.Run(b)
		c <- reply{b, err}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, r.err)
		}
		var v struct {
			Return json.RawMessage `json:"return"`
		}
		if err := json.Unmarshal(r.b, &v); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		return v.Return, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("qmp %s: no reply in %s", cmd, timeout)
	}
}

// close disconnects and waits for the event goroutine to end.
func (m *monitor) close() {
	_ = m.mon.Disconnect()
	<-m.done
}
