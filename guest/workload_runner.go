package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// maxRunnerOutput bounds what the agent reads from the runner.
const maxRunnerOutput = 8 << 20

// The checks of protocol.RunnerWorkload live in their own program
// (cmd/vmrunner-workload, package workloadcheck), which the host packs at
// protocol.WorkloadRunnerPath only when a plan has one: their protocol
// clients would make the agent several times bigger for every VM. The agent
// relays each of them to it.
func init() {
	for _, def := range protocol.Checks() {
		if def.Runner == protocol.RunnerWorkload {
			agentChecks.set(def.Name, runnerCheck(def.Name))
		}
	}
}

// RunnerOutcome is what cmd/vmrunner-workload prints on stdout: an Outcome,
// or the error that stopped the check.
type RunnerOutcome struct {
	Status    protocol.Status     `json:"status,omitempty"`
	Message   string              `json:"message,omitempty"`
	Details   json.RawMessage     `json:"details,omitempty"`
	Sub       []protocol.Result   `json:"sub,omitempty"`
	Artifacts []protocol.Artifact `json:"artifacts,omitempty"`
	Error     string              `json:"error,omitempty"`
}

// NewRunnerOutcome encodes the result of a check for the agent.
func NewRunnerOutcome(o Outcome, err error) RunnerOutcome {
	r := RunnerOutcome{Status: o.Status, Message: o.Message, Sub: o.Sub, Artifacts: o.Artifacts}
	if o.Details != nil {
		b, merr := json.Marshal(o.Details)
		if merr != nil {
			err = errors.Join(err, fmt.Errorf("encode details: %w", merr))
		}
		r.Details = b
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// runnerCheck runs check name in the workload runner, with the params on stdin,
// and relays its outcome. The runner is stopped with SIGTERM when ctx ends.
// In the guest it runs in the sandbox (sandbox_linux.go), as exec's programs
// do, and so does the Beyla binary it starts: its stderr reaches the
// console through the agent, with anything that could pass for a frame of
// the console channel defused (frameDefuser).
func runnerCheck(name string) Check {
	return func(ctx context.Context, params json.RawMessage) (Outcome, error) {
		if _, err := os.Stat(protocol.WorkloadRunnerPath); err != nil {
			return Outcome{}, fmt.Errorf("%s check: %s is not in the initramfs: %w", name, protocol.WorkloadRunnerPath, err)
		}
		cmd := exec.CommandContext(ctx, protocol.WorkloadRunnerPath, name)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		cmd.Stdin = bytes.NewReader(params)
		var stdout bytes.Buffer
		cmd.Stdout = &limited{w: &stdout, n: maxRunnerOutput}
		// The console, through a pipe: the runner gets no descriptor of it.
		stderr := &frameDefuser{w: os.Stderr}
		cmd.Stderr = stderr
		if os.Getpid() == 1 {
			sandbox(cmd)
		}
		runErr := cmd.Run()
		stderr.flush()
		var r RunnerOutcome
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			if runErr != nil {
				return Outcome{}, fmt.Errorf("%s check: %w", name, runErr)
			}
			return Outcome{}, fmt.Errorf("%s check: read its outcome: %w", name, err)
		}
		o := Outcome{Status: r.Status, Message: r.Message, Sub: r.Sub, Artifacts: r.Artifacts}
		if len(r.Details) > 0 {
			o.Details = r.Details
		}
		if r.Error != "" {
			return o, errors.New(r.Error)
		}
		return o, nil
	}
}

// frameDefuser passes text on to w with every "=vmrunner1" (the start of
// a console frame or part, protocol.FramePrefix) made "-vmrunner1", so
// that no text relayed to the console can be taken for a message of the
// agent's. The last bytes of a write, which may begin a prefix the next
// write ends, wait for it (or for flush).
type frameDefuser struct {
	w    io.Writer
	tail []byte
}

var frameMark = []byte(protocol.FramePrefix[:len(protocol.FramePrefix)-2]) // "=vmrunner1"

func (d *frameDefuser) Write(p []byte) (int, error) {
	buf := bytes.ReplaceAll(append(d.tail, p...), frameMark, []byte("-"+string(frameMark[1:])))
	keep := min(len(buf), len(frameMark)-1)
	d.tail = append(d.tail[:0], buf[len(buf)-keep:]...)
	if _, err := d.w.Write(buf[:len(buf)-keep]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes what a last write held back.
func (d *frameDefuser) flush() {
	_, _ = d.w.Write(d.tail)
	d.tail = nil
}

// limited keeps the first n bytes written to it and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	keep := min(len(p), l.n)
	if keep > 0 {
		if _, err := l.w.Write(p[:keep]); err != nil {
			return 0, err
		}
		l.n -= keep
	}
	return len(p), nil
}
