package vm

import (
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/text"
	"io"
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// watchdog names the vmrunner timer that ended a VM, if one did.
type watchdog int

const (
	watchNone     watchdog = iota
	watchVM                // the VM overran its timeout
	watchBoot              // no message from the agent within the boot timeout
	watchCheck             // a check overran its timeout and grace
	watchPowerOff          // the guest reported done but did not power off
)

// vmFacts is everything known about how one VM ended: what QMP, the console,
// the QEMU process and the guest session said, and which of vmrunner's own
// timers fired. Run gathers it; classify judges it.
type vmFacts struct {
	Interrupted bool  // the run's context ended (Ctrl-C, SIGTERM)
	StartErr    error // QEMU could not be started, or did not answer QMP
	Watchdog    watchdog
	Timeout     time.Duration // the VM's timeout
	BootTimeout time.Duration
	ByeGrace    time.Duration // how long the guest had to power off after done
	Running     string        // the check the guest was running
	// CheckTimeout is Running's timeout plus the host's grace.
	CheckTimeout time.Duration
	ProtocolErr  error // the guest broke the protocol (decoder or session)
	SendErr      error // the host could not send the plan's files
	Ready        bool  // the agent said ready
	Done         bool  // the agent said done
	Panicked     bool  // QMP: GUEST_PANICKED, or SHUTDOWN guest-panic
	Shutdown     string
	Exit         qemu.Exit
	Stderr       string // what QEMU printed
	Console      qemu.ConsoleText
	TaskDump     bool // a SysRq task dump is in console.log
	// LoglevelRaised: the console channel's quiet console was made to
	// print the dumps (SysRq 7).
	LoglevelRaised bool
}

// cleanShutdown is the SHUTDOWN reason of a guest that powered off by itself.
const cleanShutdown = "guest-shutdown"

// classify says why a VM did not end well: an error kind and a message, or
// ("", nil) when its conversation ended with done and a clean power-off.
// It is a pure function of the facts, in order of precedence: an
// interruption, then what the guest's kernel said (it knows best why it
// stopped), then what vmrunner decided, then how QEMU ended.
func classify(f vmFacts) (results.ErrorKind, error) {
	clean := f.Done && f.ProtocolErr == nil && f.SendErr == nil && f.Watchdog == watchNone && !f.Panicked &&
		f.Exit.Code == 0 && f.Exit.Signal == "" && !f.Exit.KilledByUs &&
		(f.Shutdown == cleanShutdown || f.Shutdown == "")
	after := ""
	if f.Done {
		after = " after reporting done"
	}
	switch {
	case f.Interrupted && !clean:
		return results.KindInterrupted, errors.New("interrupted")
	case f.StartErr != nil:
		return results.KindQEMU, f.StartErr
	case f.Console.Line("Initramfs unpacking failed") != "" || f.Console.Line("No working init found") != "":
		// The kernel could not unpack or run the agent: a broken archive,
		// or a kernel without initramfs support for its compression.
		line := f.Console.Line("Initramfs unpacking failed")
		if line == "" {
			line = f.Console.Line("No working init found")
		}
		return results.KindInitramfs, fmt.Errorf("the guest could not start the agent from its initramfs: %s", line)
	case f.Console.Line("Attempted to kill init") != "":
		// PID 1 exiting panics the kernel: that is the agent's failure.
		return results.KindAgent, fmt.Errorf("the guest agent (PID 1) exited%s%s: %s", runningNote(f.Running), after, f.Console.Line("Attempted to kill init"))
	case f.Panicked || f.Console.HasKind("panic"):
		line := f.Console.Splat("panic")
		if line == "" {
			line = "guest reported a panic"
		}
		return results.KindPanic, &PanicError{Line: line, Excerpt: f.Console.Excerpt(60), After: after}
	case f.Exit.Signal != "" && !f.Exit.KilledByUs:
		return results.KindQEMU, fmt.Errorf("QEMU was killed from outside (%s)%s%s", f.Exit.Signal, runningNote(f.Running), after)
	case f.ProtocolErr != nil:
		return results.KindProtocol, f.ProtocolErr
	case f.SendErr != nil:
		return results.KindQEMU, f.SendErr
	case f.Watchdog != watchNone:
		return watchdogFailure(f)
	case clean:
		return "", nil
	case !f.Ready:
		kind := results.KindBootTimeout
		if f.Exit.Code > 0 {
			// QEMU's own error leads: it is the reason.
			return results.KindQEMU, fmt.Errorf("QEMU exited (%s) before the guest agent started: %s; console: %s",
				f.Exit.Status, text.OrNone(text.LastLines(f.Stderr, 3)), text.OrNone(text.LastLines(f.Console.Excerpt(5), 5)))
		}
		return kind, fmt.Errorf("VM stopped before the guest agent started (shutdown: %s, qemu: %s); console: %s",
			text.OrNone(f.Shutdown), text.OrNone(text.LastLines(f.Stderr, 3)), text.OrNone(text.LastLines(f.Console.Excerpt(5), 5)))
	case f.Done && f.Exit.Code > 0:
		return results.KindQEMU, fmt.Errorf("QEMU exited (%s) after the guest reported done: %s", f.Exit.Status, text.OrNone(text.LastLines(f.Stderr, 3)))
	case f.Done:
		return results.KindAgent, fmt.Errorf("the guest did not power off cleanly after reporting done (shutdown: %s); console: %s",
			text.OrNone(f.Shutdown), text.OrNone(text.LastLines(f.Console.Excerpt(5), 5)))
	default:
		return results.KindAgent, fmt.Errorf("guest agent stopped before reporting done%s (shutdown: %s); console: %s",
			runningNote(f.Running), text.OrNone(f.Shutdown), text.OrNone(text.LastLines(f.Console.Excerpt(5), 5)))
	}
}

// watchdogFailure describes the VM a vmrunner timer ended.
func watchdogFailure(f vmFacts) (results.ErrorKind, error) {
	dump := ""
	if f.TaskDump {
		dump = "; task dump (SysRq t, l, w) in console.log"
	}
	switch f.Watchdog {
	case watchBoot:
		return results.KindBootTimeout, fmt.Errorf("no message from the guest agent within %s of QEMU start%s", f.BootTimeout, dump)
	case watchCheck:
		return results.KindTimeout, fmt.Errorf("check %s did not report within %s (its timeout and %s grace): the guest is stuck%s",
			f.Running, f.CheckTimeout, checkGrace, dump)
	case watchPowerOff:
		return results.KindTimeout, fmt.Errorf("the guest reported done but did not power off within %s", f.ByeGrace)
	default:
		return results.KindTimeout, fmt.Errorf("VM did not finish within %s%s%s", f.Timeout, runningNote(f.Running), dump)
	}
}

// PanicError is a kernel panic seen in a guest: %v prints the panic line,
// %+v the console excerpt around it.
type PanicError struct {
	Line    string
	Excerpt string
	After   string // " after reporting done" when the guest had reported done
}

func (e *PanicError) Error() string { return "kernel panic" + e.After + ": " + e.Line }

// Format implements fmt.Formatter for %+v.
func (e *PanicError) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('+') {
		fmt.Fprintf(f, "%s\n%s", e.Error(), e.Excerpt)
		return
	}
	_, _ = io.WriteString(f, e.Error())
}

func runningNote(check string) string {
	if check == "" {
		return ""
	}
	return " while running check " + check
}
