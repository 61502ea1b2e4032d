package guest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func init() { agentChecks.Add(protocol.SelftestCheck.Def(), checkSelftest) }

// rawPort is the control port, for the selftest actions that must break
// the protocol on purpose. Agent.Run sets it.
var rawPort struct {
	sync.Mutex
	w io.Writer
}

func setRawPort(w io.Writer) {
	rawPort.Lock()
	rawPort.w = w
	rawPort.Unlock()
}

// readURandom reads n bytes from /dev/urandom itself, not through
// getrandom(2), so that the check reads what a user's program would.
func readURandom(n int) ([]byte, error) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read /dev/urandom: %w", err)
	}
	return b, nil
}

// checkSelftest makes the guest fail in the way params ask, so that the host's
// handling of each failure is tested against a real kernel.
func checkSelftest(ctx context.Context, params json.RawMessage) (Outcome, error) {
	p, err := protocol.SelftestCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	switch p.Action {
	case "pass":
		return Outcome{Status: protocol.StatusPass, Message: "selftest passed"}, nil
	case "clock":
		now := time.Now()
		return Outcome{Status: protocol.StatusPass, Message: "guest clock " + now.UTC().Format(time.RFC3339Nano),
			Details: protocol.SelftestDetails{UnixNS: now.UnixNano()}}, nil
	case "random":
		b, err := readURandom(32)
		if err != nil {
			return Outcome{}, fmt.Errorf("selftest: %w", err)
		}
		return Outcome{Status: protocol.StatusPass, Message: "urandom " + hex.EncodeToString(b),
			Details: protocol.SelftestDetails{URandom: hex.EncodeToString(b)}}, nil
	case "console-noise":
		go consoleNoise()
		return Outcome{Status: protocol.StatusPass, Message: "console noise started"}, nil
	case "panic":
		_ = os.WriteFile("/proc/sys/kernel/sysrq", []byte("1\n"), 0o644)
		if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0o200); err != nil {
			return Outcome{}, fmt.Errorf("selftest: trigger crash: %w", err)
		}
	case "hang":
		select {} // ignores ctx on purpose: the agent's watchdog must move on
	case "exit-agent":
		os.Exit(3)
	case "flood-channel", "garbage":
		rawPort.Lock()
		w := rawPort.w
		rawPort.Unlock()
		if w == nil {
			return Outcome{}, fmt.Errorf("selftest: no control port")
		}
		line := []byte("this is not a protocol message\n")
		if p.Action == "flood-channel" {
			line = bytes.Repeat([]byte("A"), 2*protocol.MaxMessageSize)
		}
		if _, err := w.Write(line); err != nil {
			return Outcome{}, fmt.Errorf("selftest: write: %w", err)
		}
	}
	// The host is expected to stop the VM; give it the time to.
	select {
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	case <-time.After(time.Minute):
		return Outcome{Status: protocol.StatusFail, Message: "selftest: the host did not react"}, nil
	}
}

// consoleNoise prints to the console as fast as it can until the VM ends:
// kernel records at every log level (those at KERN_EMERG reach the
// console whatever its level) and text written to the console tty, lines
// and pieces of lines, so that the console channel's frames are tested
// against kernel text that comes at any moment.
func consoleNoise() {
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	tty, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		kmsg.Close()
		return
	}
	text := " vmrunner console noise: the quick brown fox jumps over the lazy dog =vmrunner1"
	for i := 0; ; i++ {
		_, _ = fmt.Fprintf(kmsg, "<%d>noise %d level %d%s\n", i%8, i, i%8, text)
		if i%4 == 0 {
			_, _ = fmt.Fprintf(tty, "tty noise %d%s", i, text[:i%len(text)])
		}
	}
}
