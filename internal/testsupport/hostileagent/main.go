// Command hostileagent is a guest agent that misbehaves on purpose, to test
// that the host never reports a pass it should not and that nothing a guest
// sends can hurt the host. It boots like the real agent (package guest:
// mounts, modules, port), then breaks the protocol in the way the kernel
// argument vmrunner.hostile=MODE asks (modes, below). The integration tests
// build it as the agent of a --agent-dir:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o DIR/vmrunner-agent-x86_64 ./internal/testsupport/hostileagent
//	vmrunner run matrix.yaml --agent-dir DIR --append vmrunner.hostile=exit-after-results
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/protocol"
)

// modeFlag on the kernel command line selects the misbehaviour.
const modeFlag = "vmrunner.hostile="

// Escapes is what the escape modes put in guest strings: colours, a window
// title (OSC), a bell, backspaces, a carriage return, a C1 CSI, a
// bidirectional override and a newline that would forge a summary row.
const Escapes = "\x1b[31mred\x1b[0m \x1b]0;owned\x07 back\b\bspace \rover \u009b2J \u202etxt.exe\n6.1 x86_64 forged pass"

// KernelText is the kernel message frame-cut prints into a frame.
const KernelText = "vmrunner hostile agent: kernel text in the middle of a frame"

// modes maps each mode to what the guest does once the port is open.
var modes = map[string]func(*conv) error{
	// Reports every check as passed, then PID 1 exits: the kernel panics
	// with "Attempted to kill init".
	"exit-after-results": func(c *conv) error {
		if _, err := c.reportAll(""); err != nil {
			return err
		}
		os.Exit(0)
		return nil
	},
	// Reports every check, then powers off without done.
	"poweroff-without-done": func(c *conv) error {
		_, err := c.reportAll("")
		return err
	},
	// Reports every check, then hangs: the VM timeout ends it.
	"hang-after-results": func(c *conv) error {
		if _, err := c.reportAll(""); err != nil {
			return err
		}
		hang()
		return nil
	},
	// Reports everything and done, then the kernel panics on bye.
	"panic-after-done": func(c *conv) error {
		if err := c.reportAllDone(""); err != nil {
			return err
		}
		c.waitBye()
		_ = os.WriteFile("/proc/sys/kernel/sysrq", []byte("1\n"), 0o644)
		return os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0o200)
	},
	// Reports everything and done, then never powers off.
	"hang-after-done": func(c *conv) error {
		if err := c.reportAllDone(""); err != nil {
			return err
		}
		c.waitBye()
		hang()
		return nil
	},
	// A result after done.
	"result-after-done": func(c *conv) error {
		if err := c.reportAllDone(""); err != nil {
			return err
		}
		return c.send(protocol.Message{Type: protocol.TypeResult, Result: &protocol.Result{Check: c.plan.Checks[0].Name, Status: protocol.StatusPass}})
	},
	// done twice.
	"duplicate-done": func(c *conv) error {
		n, err := c.reportAll("")
		if err != nil {
			return err
		}
		if err := c.done(n); err != nil {
			return err
		}
		return c.done(n)
	},
	// A done that counts results that never came.
	"wrong-done-count": func(c *conv) error {
		n, err := c.reportAll("")
		if err != nil {
			return err
		}
		return c.done(n + 2)
	},
	// 64 results of 900 KB of details each (56 MiB in all).
	"flood-results": func(c *conv) error {
		check := c.plan.Checks[0].Name
		if err := c.start(check); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]string{"padding": strings.Repeat("x", 900<<10)})
		for i := 0; i < 64; i++ {
			r := protocol.Result{Check: fmt.Sprintf("%s/flood-%d", check, i), Status: protocol.StatusPass, Details: details}
			if err := c.send(protocol.Message{Type: protocol.TypeResult, Result: &r}); err != nil {
				return err
			}
		}
		return c.done(64)
	},
	// 150,000 log messages.
	"flood-messages": func(c *conv) error {
		for i := 0; i < 150_000; i++ {
			if err := c.send(protocol.Message{Type: protocol.TypeLog, Log: &protocol.Log{Level: "info", Text: "flood"}}); err != nil {
				return err
			}
		}
		return c.reportAllDone("")
	},
	// Terminal escapes in every free-text string: messages, details, logs,
	// artifacts. A well-formed conversation otherwise.
	"escapes-in-text": func(c *conv) error {
		if err := c.send(protocol.Message{Type: protocol.TypeLog, Log: &protocol.Log{Level: "warn\x1b[2J", Text: Escapes}}); err != nil {
			return err
		}
		return c.reportAllDone(Escapes)
	},
	// A check name carrying an escape and a newline.
	"escapes-in-name": func(c *conv) error {
		check := c.plan.Checks[0].Name
		if err := c.start(check); err != nil {
			return err
		}
		r := protocol.Result{Check: check + "/x" + Escapes, Status: protocol.StatusPass}
		if err := c.send(protocol.Message{Type: protocol.TypeResult, Result: &r}); err != nil {
			return err
		}
		return c.done(1)
	},
	// Console channel only (a kernel without a virtio console): btf is
	// reported straight, then selftest's result frame is written in two
	// halves with a kernel message printed between them, as the kernel
	// does when it prints an emergency while a frame goes out; then done.
	"frame-cut": func(c *conv) error {
		first, rest := c.plan.Checks[0].Name, c.plan.Checks[1:]
		if err := c.reportOne(first, ""); err != nil {
			return err
		}
		if len(rest) == 0 {
			return errors.New("hostile agent: frame-cut needs two checks")
		}
		if err := c.start(rest[0].Name); err != nil {
			return err
		}
		var line bytes.Buffer
		r := protocol.Result{Check: rest[0].Name, Status: protocol.StatusPass, Message: "cut by kernel text"}
		if err := protocol.NewEncoder(&line).Send(protocol.Message{Type: protocol.TypeResult, Result: &r}); err != nil {
			return err
		}
		frame := protocol.AppendFrame(nil, bytes.TrimSuffix(line.Bytes(), []byte("\n")))
		err := onConsole(func(con *os.File) error {
			if _, err := con.Write(frame[:len(frame)/2]); err != nil {
				return err
			}
			// Wait until the first half is on the wire (tcdrain), so
			// that the kernel's text comes after it, not before it.
			if err := unix.IoctlSetInt(int(con.Fd()), unix.TCSBRK, 1); err != nil {
				return err
			}
			// KERN_EMERG: printed on the console even at kernel.printk 1.
			if err := os.WriteFile("/dev/kmsg", []byte("<0>"+KernelText+"\n"), 0); err != nil {
				return err
			}
			_, err := con.Write(frame[len(frame)/2:])
			return err
		})
		if err != nil {
			return err
		}
		return c.done(len(c.plan.Checks))
	},
	// Console channel only: a frame line that never ends (4 MiB without a
	// newline), then a well-formed conversation the host must not believe.
	"flood-frame": func(c *conv) error {
		err := onConsole(func(con *os.File) error {
			chunk := []byte(strings.Repeat("QUFB", 16<<10))
			if _, err := con.WriteString(protocol.FramePrefix + "1048576 00000000 "); err != nil {
				return err
			}
			for sent := 0; sent < 4<<20; sent += len(chunk) {
				if _, err := con.Write(chunk); err != nil {
					return err
				}
			}
			_, err := con.WriteString("\n")
			return err
		})
		if err != nil {
			return err
		}
		return c.reportAllDone("")
	},
	// Console channel only: a frame whose header is well-formed and whose
	// base64 runs past 1 MiB with no newline, then nothing more, ever.
	// Less than a whole message's base64 (1.33 MiB), so only the line
	// bound (protocol.MaxGuestFrameLine) can refuse it before the VM's
	// timeout.
	"endless-frame-line": func(c *conv) error {
		con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer con.Close()
		chunk := []byte(strings.Repeat("QUFB", 16<<10))
		if _, err := con.WriteString(protocol.FramePrefix + "1048576 00000000 "); err != nil {
			return err
		}
		for sent := 0; sent < 1<<20+64<<10; sent += len(chunk) {
			if _, err := con.Write(chunk); err != nil {
				return err
			}
		}
		hang()
		return nil
	},
	// An artifact that would turn the host's qemu.log into a directory.
	"artifact-host-name": func(c *conv) error {
		check := c.plan.Checks[0].Name
		if err := c.start(check); err != nil {
			return err
		}
		a := protocol.Artifact{Check: check, Name: "qemu.log/x", Data: "owned\n"}
		if err := c.send(protocol.Message{Type: protocol.TypeArtifact, Artifact: &a}); err != nil {
			return err
		}
		return c.reportAllDone("")
	},
}

func main() {
	guest.MainWith(func(ctx context.Context, a *guest.Agent, port io.ReadWriter) error {
		mode := kernelArg("/proc/cmdline")
		misbehave, ok := modes[mode]
		if !ok {
			return fmt.Errorf("hostile agent: unknown mode %q (kernel argument %sMODE)", mode, modeFlag)
		}
		a.Log.Printf("hostile agent: mode %s", mode)
		c := &conv{enc: protocol.NewEncoder(port), dec: protocol.NewDecoder(port)}
		if err := c.send(protocol.Message{Type: protocol.TypeReady, Ready: &a.Ready}); err != nil {
			return err
		}
		m, err := c.dec.Next()
		if err != nil {
			return fmt.Errorf("wait for plan: %w", err)
		}
		if m.Type != protocol.TypePlan {
			return fmt.Errorf("wait for plan: got %s", m.Type)
		}
		c.plan = *m.Plan
		if len(c.plan.Checks) == 0 {
			return errors.New("hostile agent: the plan has no check")
		}
		if err := c.prepared(); err != nil {
			return err
		}
		return misbehave(c)
	})
}

// onConsole runs write with the console open: what it writes goes past
// the agent's channel, as a broken agent would write frames.
func onConsole(write func(con *os.File) error) error {
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer con.Close()
	return write(con)
}

// hang blocks forever. Not select{}: with every goroutine asleep the Go
// runtime would end PID 1, which is another mode.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// conv is the hostile side of a conversation.
type conv struct {
	enc  *protocol.Encoder
	dec  *protocol.Decoder
	plan protocol.Plan
}

func (c *conv) send(m protocol.Message) error { return c.enc.Send(m) }

// prepared plays the plan's preliminaries straight (the misbehaviour is
// for later): it reads the plan's files, without keeping them, and says
// prepared when the plan has host state.
func (c *conv) prepared() error {
	var bytes int64
	for _, f := range c.plan.Files {
		for got := int64(0); got < f.Size; {
			m, err := c.dec.Next()
			if err != nil || m.Type != protocol.TypeFile {
				return fmt.Errorf("hostile agent: want the data of %s: %v", f.Path, err)
			}
			got += int64(len(m.File.Data))
		}
		bytes += f.Size
	}
	h := c.plan.Host
	if h == nil {
		return nil
	}
	p := protocol.Prepared{Boot: h.Boot, EntropyBytes: len(h.Entropy), Files: len(c.plan.Files), FileBytes: bytes}
	if h.Boot == protocol.BootSnapshot {
		p.SnapshotAgeMS = (h.TimeUnixNS - h.SnapshotSavedUnixNS) / int64(time.Millisecond)
	}
	return c.send(protocol.Message{Type: protocol.TypePrepared, Prepared: &p})
}

func (c *conv) start(check string) error {
	return c.send(protocol.Message{Type: protocol.TypeCheckStart, CheckStart: &protocol.CheckStart{Check: check}})
}

// reportAllDone reports every planned check as reportAll does, then done.
func (c *conv) reportAllDone(message string) error {
	n, err := c.reportAll(message)
	if err != nil {
		return err
	}
	return c.done(n)
}

// reportAll reports every planned check as passed, with message (or a
// plain one) and details carrying it, and an artifact; it returns the
// number of results sent.
func (c *conv) reportAll(message string) (int, error) {
	for _, spec := range c.plan.Checks {
		if err := c.reportOne(spec.Name, message); err != nil {
			return 0, err
		}
	}
	return len(c.plan.Checks), nil
}

// reportOne reports check as reportAll does.
func (c *conv) reportOne(check, message string) error {
	if err := c.start(check); err != nil {
		return err
	}
	msg := message
	if msg == "" {
		msg = "reported by the hostile agent"
	}
	details, _ := json.Marshal(map[string]string{"note": msg, msg: "as a key"})
	art := protocol.Artifact{Check: check, Name: check + "/hostile.txt", Data: msg + "\n"}
	if err := c.send(protocol.Message{Type: protocol.TypeArtifact, Artifact: &art}); err != nil {
		return err
	}
	r := protocol.Result{Check: check, Status: protocol.StatusPass, Message: msg, Details: details}
	return c.send(protocol.Message{Type: protocol.TypeResult, Result: &r})
}

func (c *conv) done(n int) error {
	return c.send(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{Results: n}})
}

// waitBye waits a little for the host's bye, as the real agent does.
func (c *conv) waitBye() {
	got := make(chan struct{})
	go func() {
		_, _ = c.dec.Next()
		close(got)
	}()
	select {
	case <-got:
	case <-time.After(guest.ByeTimeout):
	}
}

// kernelArg returns the value of vmrunner.hostile= on the command line.
func kernelArg(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, w := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(w, modeFlag); ok {
			return v
		}
	}
	return ""
}
