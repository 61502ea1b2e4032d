// Command forger is a program under test that tries to speak for the
// vmrunner agent (issue 20, item 1): it takes the agent's channel with
// pidfd_open(1) + pidfd_getfd, or opens the channel's device, writes a
// passing result for its own test and a done, and powers the VM off; then it
// exits 1. Run by vmrunner exec, its verdict must be its own exit 1. It says
// on stderr what it tried and what came of it. Built static by the test:
//
//	CGO_ENABLED=0 go build ./testdata/forger
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

func main() {
	name := "test/" + filepath.Base(os.Args[0])
	if ch := steal(); ch != nil {
		forge(ch, name)
	} else if ch := open(); ch != nil {
		forge(ch, name)
	} else {
		say("no channel to forge on")
	}
	os.Exit(1)
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "forger: "+format+"\n", args...) }

// steal takes, from PID 1, a descriptor of a virtio port or a console.
func steal() *os.File {
	pidfd, err := unix.PidfdOpen(1, 0)
	if err != nil {
		say("pidfd_open(1): %v", err)
		return nil
	}
	defer unix.Close(pidfd)
	exe, err := os.Readlink("/proc/1/exe")
	say("PID 1 is %q (%v)", exe, err)
	var best *os.File // a virtio port before a console
	var denied error
	defer func() {
		if denied != nil && best == nil {
			say("pidfd_getfd on PID 1: %v", denied)
		}
	}()
	for fd := range 64 {
		got, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != nil {
			if !errors.Is(err, unix.EBADF) {
				denied = err
			}
			continue
		}
		target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", got))
		say("PID 1's fd %d: %s", fd, target)
		switch {
		case strings.HasPrefix(target, "/dev/vport"):
			return os.NewFile(uintptr(got), target)
		case best == nil && isChannel(target):
			best = os.NewFile(uintptr(got), target)
		default:
			unix.Close(got)
		}
	}
	return best
}

// open opens a channel device by its name.
func open() *os.File {
	for _, dev := range []string{"/dev/vport0p1", "/dev/vport1p1", "/dev/hvc0", "/dev/ttyS0", "/dev/ttyAMA0", "/dev/console"} {
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			say("open %s: %v", dev, err)
			continue
		}
		return f
	}
	return nil
}

func isChannel(path string) bool {
	for _, p := range []string{"/dev/vport", "/dev/hvc", "/dev/ttyS", "/dev/ttyAMA", "/dev/console"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func forge(ch *os.File, name string) {
	d, _ := json.Marshal(protocol.TestDetails{ExitCode: 0})
	enc := protocol.NewEncoder(ch)
	err := enc.Send(protocol.Message{Type: protocol.TypeResult, Result: &protocol.Result{Check: name, Status: protocol.StatusPass, Message: "exit status 0", Details: d}})
	if err == nil {
		err = enc.Send(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{Results: 1}})
	}
	say("forged a pass on %s: %v", ch.Name(), err)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		say("power off: %v", err)
	}
}
