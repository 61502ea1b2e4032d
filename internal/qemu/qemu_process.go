package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/text"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Files vmrunner writes in a VM directory. Guest artifacts may not use these
// names, or directories named like them (artifactSaver).
const (
	FileConsole = "console.log"
	FileQEMULog = "qemu.log"
	FileCmdline = "qemu.cmdline"
)

// Launch says how to start one QEMU.
type Launch struct {
	Config Config // its socket paths are filled in by Start
	// Dir, when set, receives qemu.cmdline before QEMU starts and qemu.log
	// (what QEMU printed) when it is closed.
	Dir string
	// Stdin and Stdout are QEMU's stdio (repro --shell puts the console
	// there); Stderr, when set, gets a copy of what QEMU prints on stderr.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Foreground leaves QEMU in vmrunner's process group, as a shell on the
	// user's terminal needs; otherwise it gets its own, so that a terminal's
	// Ctrl-C reaches vmrunner only, which stops QEMU itself and records the
	// VM as interrupted rather than as a QEMU that quit.
	Foreground bool
}

// Process is one QEMU started by Start: paused (-S) with its QMP
// monitor connected until Resume. Close ends it on every path; if vmrunner
// itself dies, the kernel kills it (PR_SET_PDEATHSIG).
type Process struct {
	cmd     *exec.Cmd
	mon     *monitor
	cfg     Config
	dir     string
	sockDir string
	control net.Listener // the guest's control port connects here (nil for a shell)
	stderr  *boundedBuffer
	started time.Time

	exited  chan struct{} // closed once QEMU is reaped
	waitErr error         // cmd.Wait's error, set before exited closes

	mu         sync.Mutex
	killedByUs bool
	closeOnce  sync.Once
}

// StartError is QEMU ending before it answered QMP: Stderr is what it
// said, which is the real reason (a kernel it cannot load, memory it cannot
// get) where the socket error would only say "connection reset".
type StartError struct {
	Status string // "exit status 1", "signal: killed"
	Stderr string
}

func (e *StartError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("QEMU exited before it answered QMP (%s) and printed nothing", e.Status)
	}
	return fmt.Sprintf("QEMU exited before it answered QMP (%s): %s", e.Status, e.Stderr)
}

// Start creates the VM's sockets, starts QEMU and connects its QMP
// monitor. The VM stays paused until Resume, so that the caller can connect
// the console first and lose nothing the guest prints.
func Start(ctx context.Context, l Launch) (_ *Process, err error) {
	bin, err := LookPath(l.Config.Arch)
	if err != nil {
		return nil, err
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	sockDir, err := os.MkdirTemp("", "vmr")
	if err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	p := &Process{cfg: l.Config, dir: l.Dir, sockDir: sockDir, exited: make(chan struct{}), stderr: &boundedBuffer{n: 64 << 10}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.cfg.QMP = filepath.Join(sockDir, "qmp")
	p.cfg.Console = filepath.Join(sockDir, "con")
	p.cfg.Control = filepath.Join(sockDir, "ctl")
	if !p.cfg.Shell {
		if p.control, err = net.Listen("unix", p.cfg.Control); err != nil {
			return nil, fmt.Errorf("listen for control port: %w", err)
		}
	}
	args := p.cfg.Args()
	if l.Dir != "" {
		_ = os.WriteFile(filepath.Join(l.Dir, FileCmdline), []byte(shellQuote(append([]string{bin}, args...))+"\n"), 0o644)
	}
	// Not exec.CommandContext: how QEMU ended is part of the outcome, so
	// vmrunner kills it itself and remembers that it did.
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = l.Stdin, p.stderr, p.stderr
	if l.Stdout != nil {
		p.cmd.Stdout = l.Stdout
	}
	if l.Stderr != nil {
		p.cmd.Stderr = io.MultiWriter(l.Stderr, p.stderr)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: !l.Foreground}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if p.control != nil {
		// Accept never blocks past QEMU's end.
		go func() { <-p.exited; _ = p.control.Close() }()
	}
	if p.mon, err = dialMonitor(ctx, p.cfg.QMP, p.exited); err != nil {
		// QEMU dying makes the QMP socket fail a moment before it is
		// reaped: give it that moment, then its stderr says why.
		select {
		case <-p.exited:
		case <-time.After(2 * time.Second):
		}
		select {
		case <-p.exited:
			return nil, &StartError{Status: exitStatus(p.waitErr), Stderr: text.LastLines(p.Stderr(), 5)}
		default:
			return nil, err
		}
	}
	p.connected(p.cfg.QMP)
	return p, nil
}

// connected removes a socket's file once its one connection is made: QEMU
// connects each of its sockets once, and nothing dials them again. Once all
// are connected the socket directory goes too, so that a vmrunner killed
// with SIGKILL after its VM started (QEMU goes with it, PR_SET_PDEATHSIG)
// leaves nothing in the temporary directory; PruneSocketDirs is for one
// killed in the moment before.
func (p *Process) connected(socket string) {
	_ = os.Remove(socket)
	_ = os.Remove(p.sockDir) // only once it is empty
}

// Resume lets the paused VM run.
func (p *Process) Resume() error { return p.mon.run("cont", 5*time.Second) }

// Events are QEMU's QMP events, until QEMU's end of the socket closes.
func (p *Process) Events() <-chan Event { return p.mon.events }

// Exited is closed when QEMU has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Started is when QEMU was started.
func (p *Process) Started() time.Time { return p.started }

// Stderr is what QEMU printed (its first 64 KiB), less its note that it
// waits for the QMP connection.
func (p *Process) Stderr() string {
	lines := strings.Split(p.stderr.String(), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if !strings.Contains(l, "info: QEMU waiting for connection") {
			kept = append(kept, l)
		}
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

// DialConsole connects to the serial console socket (telnet mode).
func (p *Process) DialConsole(ctx context.Context) (net.Conn, error) {
	c, err := dialRetry(ctx, p.exited, func() (net.Conn, error) { return net.DialTimeout("unix", p.cfg.Console, time.Second) })
	if err != nil {
		return nil, fmt.Errorf("connect console: %w", err)
	}
	p.connected(p.cfg.Console)
	go func() { <-p.exited; _ = c.Close() }()
	return c, nil
}

// AcceptControl waits for the guest's control port to connect. It fails
// once QEMU has exited.
func (p *Process) AcceptControl() (net.Conn, error) {
	c, err := p.control.Accept()
	if err != nil {
		return nil, err
	}
	_ = p.control.Close() // the port connects once: closing unlinks its socket
	p.connected(p.cfg.Control)
	go func() { <-p.exited; _ = c.Close() }()
	return c, nil
}

// Stop asks QEMU to quit and kills it if it has not within a few seconds.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.markKilled()
	if p.mon != nil {
		_ = p.mon.run("quit", 2*time.Second)
	}
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		p.kill()
	}
}

func (p *Process) markKilled() {
	p.mu.Lock()
	p.killedByUs = true
	p.mu.Unlock()
}

func (p *Process) kill() {
	p.markKilled()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Exit says how QEMU ended; call it after Exited is closed.
func (p *Process) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := Exit{Status: exitStatus(p.waitErr), KilledByUs: p.killedByUs}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		e.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		}
	}
	return e
}

// Close kills QEMU if it still runs, waits for it, writes qemu.log and
// removes the sockets.
func (p *Process) Close() {
	p.closeOnce.Do(func() {
		if p.cmd != nil && p.cmd.Process != nil {
			select {
			case <-p.exited:
			default:
				p.kill()
			}
		}
		if p.mon != nil {
			p.mon.close()
		}
		if p.control != nil {
			_ = p.control.Close()
		}
		if p.dir != "" {
			_ = os.WriteFile(filepath.Join(p.dir, FileQEMULog), []byte(p.stderr.String()+"\n"), 0o644)
		}
		_ = os.RemoveAll(p.sockDir)
	})
}

// Exit is how a QEMU process ended.
type Exit struct {
	Status     string // as os/exec says it: "exit status 1", "signal: killed", "" for 0
	Code       int    // exit code, -1 when a signal ended it
	Signal     string // the signal that ended it, if one did
	KilledByUs bool   // vmrunner stopped it (after deciding the outcome)
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// dialRetry calls dial until it succeeds, ctx ends or QEMU exits: QEMU
// creates its sockets a moment after it starts.
func dialRetry[T any](ctx context.Context, exited <-chan struct{}, dial func() (T, error)) (T, error) {
	for {
		c, err := dial()
		if err == nil {
			return c, nil
		}
		var zero T
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-exited:
			return zero, errors.New("QEMU exited")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// boundedBuffer keeps the first n bytes written to it.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.n - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
