package vm

import (
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// TestClassify judges how VMs ended from their facts alone: QMP events,
// console text, QEMU's exit, what the session saw and the run's context.
func TestClassify(t *testing.T) {
	panicTail := []string{"[ 2.0] sysrq: Trigger a crash", "[ 2.1] Kernel panic - not syncing: sysrq triggered crash"}
	panicSplat := []results.Splat{{Kind: "panic", Line: "[ 2.1] Kernel panic - not syncing: sysrq triggered crash"}}
	killInit := "[ 3.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300"
	cleanExit := qemu.Exit{Status: "exit status 0"}
	done := vmFacts{Ready: true, Done: true, Shutdown: "guest-shutdown", Exit: cleanExit, ByeGrace: byeGrace}
	with := func(f vmFacts, edit func(*vmFacts)) vmFacts { edit(&f); return f }
	base := vmFacts{Timeout: 10 * time.Minute, BootTimeout: 2 * time.Minute, ByeGrace: byeGrace}
	running := func(f *vmFacts) { f.Ready, f.Running = true, "selftest" }

	tests := []struct {
		name  string
		facts vmFacts
		kind  results.ErrorKind
		want  string // in the message
	}{
		{"done and powered off", done, "", ""},
		{"done, SHUTDOWN event missed", with(done, func(f *vmFacts) { f.Shutdown = "" }), "", ""},
		{"panic via QMP (pvpanic)", with(base, func(f *vmFacts) {
			running(f)
			f.Panicked, f.Shutdown, f.Exit = true, "guest-panic", cleanExit
			f.Console = qemu.ConsoleText{Tail: panicTail, Splats: panicSplat}
		}), results.KindPanic, "kernel panic: [ 2.1] Kernel panic - not syncing: sysrq triggered crash"},
		{"panic via QMP, console silent", with(base, func(f *vmFacts) { running(f); f.Panicked = true }),
			results.KindPanic, "guest reported a panic"},
		{"panic on the console only (arm64: SHUTDOWN guest-reset)", with(base, func(f *vmFacts) {
			running(f)
			f.Shutdown, f.Exit = "guest-reset", cleanExit
			f.Console = qemu.ConsoleText{Tail: panicTail, Splats: panicSplat}
		}), results.KindPanic, "sysrq triggered crash"},
		{"panic after done", with(done, func(f *vmFacts) {
			f.Panicked, f.Shutdown = true, "guest-panic"
			f.Console = qemu.ConsoleText{Tail: panicTail, Splats: panicSplat}
		}), results.KindPanic, "kernel panic after reporting done"},
		{"agent exit", with(base, func(f *vmFacts) {
			running(f)
			f.Console = qemu.ConsoleText{Tail: []string{killInit}, Splats: []results.Splat{{Kind: "panic", Line: killInit}}}
		}), results.KindAgent, "the guest agent (PID 1) exited while running check selftest: " + killInit},
		{"agent exit after reporting everything, before done", with(base, func(f *vmFacts) {
			f.Ready = true
			f.Console = qemu.ConsoleText{Tail: []string{killInit}, Splats: []results.Splat{{Kind: "panic", Line: killInit}}}
		}), results.KindAgent, "(PID 1) exited"},
		{"power-off without done", with(base, func(f *vmFacts) {
			f.Ready, f.Shutdown, f.Exit = true, "guest-shutdown", cleanExit
			f.Console = qemu.ConsoleText{Tail: []string{"reboot: Power down"}}
		}), results.KindAgent, "guest agent stopped before reporting done (shutdown: guest-shutdown); console: reboot: Power down"},
		{"QEMU killed from outside during a check", with(base, func(f *vmFacts) {
			running(f)
			f.Exit = qemu.Exit{Status: "signal: killed", Code: -1, Signal: "killed"}
		}), results.KindQEMU, "QEMU was killed from outside (killed) while running check selftest"},
		{"QEMU killed from outside during boot", with(base, func(f *vmFacts) {
			f.Exit = qemu.Exit{Status: "signal: terminated", Code: -1, Signal: "terminated"}
		}), results.KindQEMU, "killed from outside (terminated)"},
		{"QEMU killed before QMP answered", with(base, func(f *vmFacts) {
			f.StartErr = &qemu.StartError{Status: "signal: killed"}
		}), results.KindQEMU, "QEMU exited before it answered QMP (signal: killed)"},
		{"QEMU failed before QMP answered: its stderr is the message", with(base, func(f *vmFacts) {
			f.StartErr = &qemu.StartError{Status: "exit status 1", Stderr: "qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory"}
		}), results.KindQEMU, "cannot set up guest memory"},
		{"QEMU exited with an error before the agent", with(base, func(f *vmFacts) {
			f.Exit, f.Stderr = qemu.Exit{Status: "exit status 1", Code: 1}, "qemu: could not load kernel"
		}), results.KindQEMU, "QEMU exited (exit status 1) before the guest agent started: qemu: could not load kernel"},
		{"our own kill is not from outside", with(base, func(f *vmFacts) {
			running(f)
			f.Watchdog, f.CheckTimeout = watchCheck, 40*time.Second
			f.Exit = qemu.Exit{Status: "signal: killed", Code: -1, Signal: "killed", KilledByUs: true}
		}), results.KindTimeout, "check selftest did not report within 40s"},
		{"boot timeout", with(base, func(f *vmFacts) { f.Watchdog, f.TaskDump = watchBoot, true }),
			results.KindBootTimeout, "no message from the guest agent within 2m0s of QEMU start; task dump (SysRq t, l, w) in console.log"},
		{"VM timeout", with(base, func(f *vmFacts) { running(f); f.Watchdog = watchVM }),
			results.KindTimeout, "VM did not finish within 10m0s while running check selftest"},
		{"hang after done: no power-off", with(done, func(f *vmFacts) {
			f.Watchdog, f.Shutdown = watchPowerOff, ""
			f.Exit = qemu.Exit{Status: "exit status 0", KilledByUs: true}
		}), results.KindTimeout, "reported done but did not power off within 10s"},
		{"protocol error", with(base, func(f *vmFacts) {
			f.Ready, f.ProtocolErr = true, violation("the guest sent a result message after done")
		}), results.KindProtocol, "result message after done"},
		{"protocol error after done", with(done, func(f *vmFacts) {
			f.ProtocolErr = violation("the guest sent done twice")
			f.Exit.KilledByUs = true
		}), results.KindProtocol, "done twice"},
		{"interrupted", with(base, func(f *vmFacts) { running(f); f.Interrupted = true; f.Exit.KilledByUs = true }),
			results.KindInterrupted, "interrupted"},
		{"interrupted after a clean end is no interruption", with(done, func(f *vmFacts) { f.Interrupted = true }), "", ""},
		{"initramfs broken", with(base, func(f *vmFacts) {
			f.Console = qemu.ConsoleText{Tail: []string{"Initramfs unpacking failed: junk in compressed archive"}}
		}), results.KindInitramfs, "junk in compressed archive"},
		{"no init", with(base, func(f *vmFacts) {
			f.Console = qemu.ConsoleText{Tail: []string{"Kernel panic - not syncing: No working init found."}, Splats: []results.Splat{{Kind: "panic"}}}
		}), results.KindInitramfs, "No working init found"},
		{"stopped before the agent, QEMU fine", with(base, func(f *vmFacts) { f.Exit, f.Shutdown = cleanExit, "guest-reset" }),
			results.KindBootTimeout, "VM stopped before the guest agent started (shutdown: guest-reset"},
		{"done, then QEMU failed", with(done, func(f *vmFacts) { f.Exit, f.Stderr = qemu.Exit{Status: "exit status 1", Code: 1}, "qemu: oops" }),
			results.KindQEMU, "QEMU exited (exit status 1) after the guest reported done: qemu: oops"},
		{"done, then an unclean shutdown", with(done, func(f *vmFacts) { f.Shutdown = "guest-reset" }),
			results.KindAgent, "did not power off cleanly after reporting done (shutdown: guest-reset)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := classify(tt.facts)
			if kind != tt.kind {
				t.Errorf("kind = %q (%v), want %q", kind, err, tt.kind)
			}
			switch {
			case tt.kind == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.kind != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPanicErrorFormat(t *testing.T) {
	err := error(&PanicError{Line: "Kernel panic - not syncing: x", Excerpt: "line 1\nline 2"})
	if got := fmt.Sprintf("%v", err); got != "kernel panic: Kernel panic - not syncing: x" {
		t.Errorf("%%v = %q", got)
	}
	if got := fmt.Sprintf("%+v", err); !strings.HasSuffix(got, "\nline 1\nline 2") {
		t.Errorf("%%+v = %q", got)
	}
	var pe *PanicError
	if !errors.As(fmt.Errorf("vm: %w", err), &pe) {
		t.Error("errors.As does not find the PanicError")
	}
}
