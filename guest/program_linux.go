package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// pipeGrace is how long the pipes may stay silent once the program exited
// before they are closed: a process it left behind may hold them open.
const pipeGrace = 2 * time.Second

// runProgram binds p's shares, runs p.Binary with its argv exactly as
// given, in p.Dir, with the guest's environment and p.Env, as root with every
// capability and no memlock limit, stdin /dev/null, in its own process
// group. Output goes to send as it is read. It returns the exit status, or
// an error when the program could not start or had to be stopped (margin
// before ctx's deadline, after a task dump).
func runProgram(ctx context.Context, p protocol.TestParams, check string, send func(protocol.Output) error, margin time.Duration) (programRun, error) {
	run := programRun{exitCode: -1}
	if os.Getpid() == 1 {
		// The guest's init: prepare the VM for the program. (Unit tests
		// run programs on the host, which must stay as it is.)
		if err := bindShares(p.Binds); err != nil {
			return run, err
		}
		if err := removeMemlock(); err != nil {
			return run, err
		}
		if err := os.MkdirAll(protocol.TestHome, 0o700); err != nil {
			return run, fmt.Errorf("create %s: %w", protocol.TestHome, err)
		}
		if err := LoopbackUp(); err != nil {
			return run, err
		}
	}
	dir := p.Dir
	if dir == "" {
		dir = "/"
	}

	cmd := exec.Command(p.Binary)
	cmd.Args = append([]string{p.Binary}, p.Args...)
	cmd.Dir = dir
	cmd.Env = programEnv(p.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Getpid() == 1 {
		// In the guest, the program runs where it cannot reach the agent.
		sandbox(cmd)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return run, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	cmd.Stdin = devnull
	outR, outW, err := os.Pipe()
	if err != nil {
		return run, fmt.Errorf("create pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return run, fmt.Errorf("create pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	pm := newPump(check, p.MaxOutput, send)
	pm.read(protocol.Stdout, outR)
	pm.read(protocol.Stderr, errR)
	finish := func() {
		// Once the program is gone, what still holds the pipes gets a
		// moment of silence, then the read ends are closed under it.
		// What the program wrote before it exited is all sent, however
		// long the channel takes.
		pm.waitIdle(pipeGrace, func() { outR.Close(); errR.Close() })
		outR.Close()
		errR.Close()
		run.stdout, run.stderr, run.dropped = pm.counts[protocol.Stdout], pm.counts[protocol.Stderr], pm.dropped
	}

	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		finish()
		return run, fmt.Errorf("start %s: %w", p.Binary, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	var stop <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(dl) - margin)
		defer t.Stop()
		stop = t.C
	}
	select {
	case <-exited:
	case <-stop:
		dumped := dumpTasks()
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		<-exited
		// Whatever it left behind goes too, so that the pipes close.
		finish()
		msg := fmt.Sprintf("%s did not exit in time: stopped", path.Base(p.Binary))
		if dumped {
			msg += "; task dump (SysRq t) in console.log"
		}
		return run, errors.New(msg)
	case <-ctx.Done():
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		<-exited
		finish()
		return run, ctx.Err()
	}
	// The program's process group may outlive it; it has no business
	// running once its test is over.
	_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	finish()
	if waitErr != nil && cmd.ProcessState == nil {
		return run, fmt.Errorf("wait for %s: %w", p.Binary, waitErr)
	}
	run.exitCode, run.signal = exitStatus(cmd.ProcessState)
	return run, nil
}

// exitStatus is the status as a shell reports it: the exit code, or 128+N
// for a program killed by signal N.
func exitStatus(ps *os.ProcessState) (int, string) {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), unix.SignalName(ws.Signal())
	}
	return ps.ExitCode(), ""
}

// programEnv is the guest's environment for a program, with extra's
// KEY=VALUE pairs replacing or adding to it.
func programEnv(extra []string) []string {
	env := []string{
		"PATH=" + protocol.TestPath,
		"HOME=" + protocol.TestHome,
		"USER=root",
		"LOGNAME=root",
		"SHELL=/bin/gosh",
		"TERM=dumb",
	}
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		env = slicesDeleteKey(env, k)
		env = append(env, e)
	}
	return env
}

func slicesDeleteKey(env []string, key string) []string {
	out := env[:0]
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return out
}

// bindShares makes each packed share appear at its target: directories
// before what lies inside them. Mount points are created as needed: a
// directory for a directory, an empty file for a file. The shares live in
// the initramfs, in memory: the program may write to them, and nothing it
// writes leaves the guest.
func bindShares(binds []protocol.Bind) error {
	sorted := append([]protocol.Bind(nil), binds...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return strings.Count(sorted[i].Target, "/") < strings.Count(sorted[j].Target, "/")
	})
	for _, b := range sorted {
		fi, err := os.Stat(b.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Target, err)
		}
		if fi.IsDir() {
			err = os.MkdirAll(b.Target, 0o755)
		} else {
			err = touch(b.Target)
		}
		if err != nil {
			return fmt.Errorf("bind %s: create mount point: %w", b.Target, err)
		}
		if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
	}
	return nil
}

func touch(p string) error {
	if err := os.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// loudConsole runs f so that what it makes the kernel print at the normal
// log levels reaches the console. On the console channel, whose console
// prints emergencies only, it is consoleChannel.loud (run sets it); on
// virtio-serial the console already prints them.
var loudConsole = func(f func()) { f() }

// dumpTasks asks the kernel to print every task's stack on the console
// (SysRq t), so that a program that hangs can be seen where it hangs.
func dumpTasks() bool {
	if os.Getpid() != 1 {
		return false // never the host's kernel, from a unit test
	}
	_ = os.WriteFile("/proc/sys/kernel/sysrq", []byte("1\n"), 0o644)
	dumped := false
	loudConsole(func() {
		if err := os.WriteFile("/proc/sysrq-trigger", []byte("t"), 0o200); err != nil {
			return
		}
		// The console prints the dump after the write returns.
		time.Sleep(2 * time.Second)
		dumped = true
	})
	return dumped
}
