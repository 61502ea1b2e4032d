// Command vmrunner boots real Linux kernels in QEMU microVMs and runs eBPF
// checks inside them. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmrunner/vmrunner/results"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	os.Exit(exitCode(err))
}

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "vmrunner:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "vmrunner:", err)
	var ue usageError
	if errors.Is(err, matrix.ErrBadMatrix) || errors.As(err, &ue) {
		return results.ExitBadInput
	}
	return results.ExitInfra
}

// usageError is a wrong flag or argument: exit 2, like a bad matrix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// newLogger returns a text logger at level writing to w (stderr when nil).
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
