package guest

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/vmrunner/vmrunner/protocol"
)

// shellRequested reports whether the kernel command line asks for a shell
// (vmrunner repro --shell) instead of the plan.
func shellRequested(cmdline string) bool { return cmdlineHas(cmdline, protocol.ShellCmdlineFlag) }

// cmdlineHas reports whether the kernel command line read from the file
// cmdline holds the word flag.
func cmdlineHas(cmdline, flag string) bool {
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return false
	}
	return slices.Contains(strings.Fields(string(b)), flag)
}

// runShell runs /bin/gosh on the console as a session leader with the
// console's tty as its controlling terminal, and returns when it exits;
// Main then powers the VM off.
func runShell(ctx context.Context, logger *log.Logger) error {
	tty := consoleTTY()
	f, err := os.OpenFile(tty, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", tty, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "vmrunner: shell on %s; leave it (exit or Ctrl-D) to power the VM off\n", tty)
	cmd := exec.CommandContext(ctx, "/bin/gosh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin", "HOME=/", "TERM=linux", "SHELL=/bin/gosh"}
	// A new session whose controlling terminal is the console (fd 0 in
	// the child), so that the shell owns the foreground and gets Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Run()
	logger.Printf("shell exited: %v", err)
	return nil
}

// consoleTTY returns the device of the active console (/dev/ttyS0,
// /dev/ttyAMA0): /dev/console itself cannot be a controlling terminal.
func consoleTTY() string {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err == nil {
		fields := strings.Fields(string(b))
		if len(fields) > 0 {
			name := fields[len(fields)-1]
			if !strings.ContainsAny(name, "/.") {
				return "/dev/" + name
			}
		}
	}
	return "/dev/console"
}
