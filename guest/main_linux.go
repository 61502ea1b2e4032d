package guest

import (
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/version"
	"io"
	"log"
	"os"
	"runtime/debug"
	"time"

	"github.com/vmrunner/vmrunner/guest/kernelbtf"
	"github.com/vmrunner/vmrunner/protocol"
)

// logPrefix starts every line the agent writes to the console.
const logPrefix = "vmrunner-agent: "

// Main is the agent's entry point as PID 1. It never returns: whatever
// happens, it ends by powering the VM off. Run as any other process, it
// refuses to start, since it would power the machine off.
func Main() {
	MainWith(func(ctx context.Context, a *Agent, port io.ReadWriter) error { return a.Run(ctx, port) })
}

// MainWith is Main with another conversation once the port is open.
func MainWith(converse Converse) {
	if len(os.Args) > 0 && os.Args[0] == sandboxArg0 {
		sandboxMain(os.Args) // the agent's binary run again as a sandbox's init
	}
	logger := log.New(os.Stderr, logPrefix, 0)
	if os.Getpid() != 1 {
		logger.Print("refusing to run: not PID 1 (this program powers the machine off)")
		os.Exit(2)
	}
	defer func() {
		if p := recover(); p != nil {
			logger.Printf("panic: %v\n%s", p, debug.Stack())
		}
		powerOff(logger)
	}()
	if err := run(logger, converse); err != nil {
		logger.Printf("fatal: %v", err)
	}
}

func run(logger *log.Logger, converse Converse) error {
	ctx := context.Background()
	start := time.Now()
	mountAll(logger)
	if err := redirectOutput("/dev/console"); err != nil {
		logger.Printf("redirect output: %v", err)
	}

	notes := loadModules(protocol.ModuleListPath, logger)
	if shellRequested("/proc/cmdline") {
		return runShell(ctx, logger)
	}

	port, channel, err := openChannel(ctx, "/sys", logger)
	if err != nil {
		return err
	}
	defer port.Close()
	if c, ok := port.(*consoleChannel); ok {
		loudConsole = c.loud
	}
	if channel == protocol.ChannelConsole {
		// Said on the channel too: the host logs it.
		notes = append(notes, protocol.Log{Level: "info", Text: "no virtio console port: messages go over the serial console " + consoleName("/sys")})
	}
	logger.Printf("%s channel open after %s", channel, time.Since(start).Round(time.Millisecond))

	// Before ready, so that a snapshot taken at ready holds the decoded
	// types and restored VMs do not parse them again.
	if cmdlineHas("/proc/cmdline", protocol.WarmBTFCmdlineFlag) {
		warmStart := time.Now()
		if n, err := kernelbtf.Warm(); err != nil {
			logger.Printf("read BTF ahead of the checks: %v", err)
		} else if n > 0 {
			logger.Printf("BTF read ahead of the checks: %d types in %s", n, time.Since(warmStart).Round(time.Millisecond))
		}
	}

	release, machine := uname()
	up, err := uptimeMS("/proc/uptime")
	if err != nil {
		notes = append(notes, protocol.Log{Level: "warn", Text: fmt.Sprintf("read uptime: %v", err)})
	}
	agent := &Agent{
		Ready: protocol.Ready{
			Agent:         version.Qualified(),
			KernelRelease: release,
			Machine:       machine,
			UptimeMS:      up,
		},
		Notes: notes,
		Log:   logger,
	}
	return converse(ctx, agent, port)
}
