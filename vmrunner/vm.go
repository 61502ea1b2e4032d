package vmrunner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// Limits on what a guest may send.
const (
	maxGuestLogs    = 1000
	maxGuestResults = 10000
	maxArtifacts    = 10000
	maxArtifactSize = 256 << 20        // all artifacts of one VM together
	byeGrace        = 10 * time.Second // how long QEMU gets to power off after "bye"
	// checkGrace is added to a check's own timeout before the host decides
	// the guest is stuck: the agent reports its own timeouts first.
	checkGrace = 30 * time.Second
)

// vmSpec is one VM to boot.
type vmSpec struct {
	Target      Target
	Kernel      *kernels.Kernel
	Initramfs   string
	Plan        protocol.Plan
	Accel       Accel
	Profile     Profile
	MemoryMiB   int
	CPUs        int
	Dir         string // console.log and qemu.log go here
	BootTimeout time.Duration
	Timeout     time.Duration
	Append      []string
	Log         *slog.Logger
	// Output, when set, is told each piece of a test program's output.
	Output func(protocol.Output)
}

// vmOutcome is what happened to one VM. FailKind is "" when the guest
// reported done; otherwise Err says what went wrong.
type vmOutcome struct {
	Ready    *protocol.Ready
	Results  []protocol.Result
	Logs     []protocol.Log
	Done     bool
	FailKind results.ErrorKind
	Err      error
	Boot     time.Duration // QEMU start to the agent's first message
	Splats   []results.Splat
	Shutdown string // SHUTDOWN reason from QMP
	// Artifacts maps a result's check name to the files saved for it,
	// relative to the VM directory.
	Artifacts map[string][]string
}

// PanicError is a kernel panic seen in a guest: %v prints the panic line,
// %+v the console excerpt around it.
type PanicError struct {
	Line    string
	Excerpt string
}

func (e *PanicError) Error() string { return "kernel panic: " + e.Line }

// Format implements fmt.Formatter for %+v.
func (e *PanicError) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('+') {
		fmt.Fprintf(f, "%s\n%s", e.Error(), e.Excerpt)
		return
	}
	_, _ = io.WriteString(f, e.Error())
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
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

type guestMsg struct {
	m   protocol.Message
	err error
}

// runVM boots one VM, runs its plan and always leaves no QEMU behind.
func runVM(ctx context.Context, s vmSpec) (out vmOutcome) {
	log := s.Log
	fail := func(kind results.ErrorKind, err error) vmOutcome {
		out.FailKind, out.Err = kind, err
		return out
	}
	bin, err := lookQEMU(s.Target.Arch)
	if err != nil {
		return fail(results.KindQEMU, err)
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	sockDir, err := os.MkdirTemp("", "vmr")
	if err != nil {
		return fail(results.KindQEMU, fmt.Errorf("create socket directory: %w", err))
	}
	defer os.RemoveAll(sockDir)
	cfg := qemuConfig{
		Arch: s.Target.Arch, Kernel: s.Kernel, Initramfs: s.Initramfs,
		MemoryMiB: s.MemoryMiB, CPUs: s.CPUs, Accel: s.Accel, Profile: s.Profile,
		QMP:     filepath.Join(sockDir, "qmp"),
		Control: filepath.Join(sockDir, "ctl"),
		Console: filepath.Join(sockDir, "con"),
		Append:  s.Append,
	}
	ctlL, err := net.Listen("unix", cfg.Control)
	if err != nil {
		return fail(results.KindQEMU, fmt.Errorf("listen for control port: %w", err))
	}
	defer ctlL.Close()

	args := cfg.args()
	_ = os.WriteFile(filepath.Join(s.Dir, "qemu.cmdline"), []byte(shellQuote(append([]string{bin}, args...))+"\n"), 0o644)

	vmCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	// Not exec.CommandContext: the timeout is handled below so that it can be
	// told apart from a crash; cmd.Process is killed on every path out.
	cmd := exec.Command(bin, args...)
	stderr := &boundedBuffer{n: 64 << 10}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// If vmrunner itself dies, the kernel kills QEMU. Its own process group
	// keeps a terminal's Ctrl-C away from it: vmrunner stops it, and records
	// the VM as interrupted rather than as a QEMU that quit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(results.KindQEMU, fmt.Errorf("start %s: %w", filepath.Base(bin), err))
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	var wg sync.WaitGroup
	defer func() {
		// Whatever happened, QEMU goes away and every goroutine ends.
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = ctlL.Close()
		wg.Wait()
		_ = os.WriteFile(filepath.Join(s.Dir, "qemu.log"), []byte(stderr.String()+"\n"), 0o644)
	}()

	// Listeners are closed when QEMU exits so that Accept never blocks forever.
	go func() {
		select {
		case <-exited:
		case <-vmCtx.Done():
		}
		_ = ctlL.Close()
	}()

	msgs := make(chan guestMsg)
	stopReading := make(chan struct{})
	stopReader := sync.OnceFunc(func() { close(stopReading) })
	defer stopReader()
	connc := make(chan net.Conn, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ctlL.Accept()
		if err != nil {
			return
		}
		connc <- c
		go func() { <-exited; _ = c.Close() }()
		dec := protocol.NewDecoder(c)
		for {
			m, err := dec.Next()
			select {
			case msgs <- guestMsg{m, err}:
			case <-stopReading:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	mon, err := dialMonitor(vmCtx, cfg.QMP, exited)
	if err != nil {
		select {
		case <-exited:
			return fail(results.KindQEMU, fmt.Errorf("qemu exited at start: %v: %s", waitErr, lastLines(stderr.String(), 5)))
		default:
			// QEMU waits for QMP forever: it must be killed here.
			_ = cmd.Process.Kill()
			<-exited
		}
		if ctx.Err() != nil {
			return fail(results.KindInterrupted, errors.New("interrupted"))
		}
		return fail(results.KindQEMU, err)
	}
	defer mon.close()

	// The console socket exists once QMP is up; connect before the guest runs
	// so that nothing it prints is lost.
	con := &console{}
	conConn, err := dialUnix(vmCtx, cfg.Console, exited)
	if err != nil {
		return fail(results.KindQEMU, fmt.Errorf("connect console: %w", err))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conConn.Close()
		go func() { <-exited; _ = conConn.Close() }()
		if err := con.capture(&telnetFilter{r: conConn}, filepath.Join(s.Dir, "console.log")); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn("console capture", "err", err)
		}
	}()
	// diagnose asks a guest that stopped making progress for task dumps, and
	// gives its console a moment to print them.
	diagnosed := false
	diagnose := func() {
		if err := sysrq(conConn, "tlw"); err != nil {
			log.Debug("sysrq", "err", err)
			return
		}
		diagnosed = true
		time.Sleep(2 * time.Second)
	}

	if err := mon.run("cont", 5*time.Second); err != nil {
		return fail(results.KindQEMU, err)
	}

	events := mon.events
	var (
		enc       *protocol.Encoder
		bootTimer = time.NewTimer(s.BootTimeout)
		byeTimer  <-chan time.Time
		panicked  bool
		readerEOF bool
	)
	defer bootTimer.Stop()
	planned := plannedChecks(s.Plan)
	checkTimeouts := map[string]time.Duration{}
	for _, c := range s.Plan.Checks {
		checkTimeouts[c.Name] = time.Duration(c.Timeout)
	}
	var (
		running    string           // the check the guest is running
		checkTimer <-chan time.Time // fires when it overran its timeout + checkGrace
	)
	seen := map[string]bool{}
	arts := &artifactSaver{dir: s.Dir}
	outs := &outputSaver{dir: s.Dir, live: s.Output}

loop:
	for {
		select {
		case <-vmCtx.Done():
			if ctx.Err() != nil {
				out.FailKind, out.Err = results.KindInterrupted, errors.New("interrupted")
			} else {
				out.FailKind, out.Err = results.KindTimeout, fmt.Errorf("VM did not finish within %s%s", s.Timeout, runningNote(running))
				diagnose()
			}
			break loop
		case <-bootTimer.C:
			if out.Ready == nil {
				out.FailKind, out.Err = results.KindBootTimeout, fmt.Errorf("no message from the guest agent within %s of QEMU start", s.BootTimeout)
				diagnose()
				break loop
			}
		case <-checkTimer:
			out.FailKind, out.Err = results.KindTimeout, fmt.Errorf("check %s did not report within %s (its timeout and %s grace): the guest is stuck", running, checkTimeouts[running]+checkGrace, checkGrace)
			diagnose()
			break loop
		case <-byeTimer:
			// The guest did not power off: ask QEMU to quit.
			_ = mon.run("quit", 2*time.Second)
			break loop
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev.Name {
			case "GUEST_PANICKED":
				panicked = true
				log.Debug("qmp event", "event", ev.Name, "action", ev.Reason)
			case "SHUTDOWN":
				out.Shutdown = ev.Reason
				if ev.Reason == "guest-panic" {
					panicked = true
				}
			}
		case gm := <-msgs:
			if gm.err != nil {
				if errors.Is(gm.err, io.EOF) || errors.Is(gm.err, net.ErrClosed) {
					readerEOF = true
					msgs = nil
					continue
				}
				out.FailKind, out.Err = results.KindProtocol, fmt.Errorf("guest channel: %w", gm.err)
				break loop
			}
			m := gm.m
			switch m.Type {
			case protocol.TypeReady:
				if out.Ready != nil {
					continue
				}
				out.Ready = m.Ready
				out.Boot = time.Since(start)
				log.Debug("agent ready", "release", m.Ready.KernelRelease, "boot", out.Boot)
				enc = protocol.NewEncoder(<-connc)
				if err := enc.Send(protocol.Message{Type: protocol.TypePlan, Plan: &s.Plan}); err != nil {
					out.FailKind, out.Err = results.KindAgent, fmt.Errorf("send plan: %w", err)
					break loop
				}
			case protocol.TypeCheckStart:
				log.Debug("check started", "check", m.CheckStart.Check)
				if to, ok := checkTimeouts[m.CheckStart.Check]; ok && to > 0 {
					running, checkTimer = m.CheckStart.Check, time.After(to+checkGrace)
				}
			case protocol.TypeLog:
				if len(out.Logs) < maxGuestLogs {
					out.Logs = append(out.Logs, *m.Log)
				}
			case protocol.TypeResult:
				r := *m.Result
				if !planned(r.Check) || seen[r.Check] || len(out.Results) >= maxGuestResults {
					log.Warn("ignoring unexpected result from guest", "check", truncate(r.Check, 64))
					continue
				}
				seen[r.Check] = true
				out.Results = append(out.Results, r)
				if r.Check == running {
					running, checkTimer = "", nil
				}
			case protocol.TypeArtifact:
				if !planned(m.Artifact.Check) {
					log.Warn("ignoring artifact for an unplanned check", "check", truncate(m.Artifact.Check, 64))
					continue
				}
				if err := arts.save(m.Artifact); err != nil {
					log.Warn("artifact not saved", "name", m.Artifact.Name, "err", err)
				}
			case protocol.TypeOutput:
				if err := outs.save(m.Output, planned); err != nil {
					out.FailKind, out.Err = results.KindProtocol, err
					break loop
				}
			case protocol.TypeDone:
				out.Done = true
				if enc != nil {
					_ = enc.Send(protocol.Message{Type: protocol.TypeBye})
				}
				byeTimer = time.After(byeGrace)
			default:
				out.FailKind, out.Err = results.KindProtocol, fmt.Errorf("guest sent a %q message", truncate(string(m.Type), 32))
				break loop
			}
		case <-exited:
			// Let the reader deliver what the guest wrote before it went away.
			if !readerEOF {
				drainMessages(msgs, &out, planned, seen, arts, outs, time.Second)
			}
			break loop
		}
	}

	// Stop QEMU (it may still be running after a timeout or protocol error).
	select {
	case <-exited:
	default:
		_ = mon.run("quit", 2*time.Second)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	// Drain the monitor's last events (SHUTDOWN, GUEST_PANICKED); the channel
	// closes when QEMU's end of the socket does.
	for ev := range orClosed(events) {
		if ev.Name == "GUEST_PANICKED" || (ev.Name == "SHUTDOWN" && ev.Reason == "guest-panic") {
			panicked = true
		}
		if ev.Name == "SHUTDOWN" {
			out.Shutdown = ev.Reason
		}
	}
	stopReader()
	out.Artifacts = arts.saved
	for check, names := range outs.close() {
		if out.Artifacts == nil {
			out.Artifacts = map[string][]string{}
		}
		out.Artifacts[check] = append(out.Artifacts[check], names...)
	}
	_ = ctlL.Close()
	wg.Wait()
	out.Splats = con.Splats()
	if diagnosed && out.Err != nil && con.contains("sysrq: Show State") {
		out.Err = fmt.Errorf("%w; task dump (SysRq t, l, w) in console.log", out.Err)
	}

	switch {
	case out.FailKind == results.KindInterrupted:
	case ctx.Err() != nil && !out.Done:
		out.FailKind, out.Err = results.KindInterrupted, errors.New("interrupted")
	case con.contains("Initramfs unpacking failed") || con.contains("No working init found"):
		// The kernel could not unpack or run the agent: a broken archive,
		// or a kernel without initramfs support for its compression.
		out.FailKind = results.KindInitramfs
		line := con.line("Initramfs unpacking failed")
		if line == "" {
			line = con.line("No working init found")
		}
		out.Err = fmt.Errorf("the guest could not start the agent from its initramfs: %s", line)
	case con.contains("Attempted to kill init"):
		// PID 1 exiting panics the kernel: that is the agent's failure.
		out.FailKind = results.KindAgent
		out.Err = fmt.Errorf("the guest agent (PID 1) exited%s: %s", runningNote(running), con.line("Attempted to kill init"))
	case panicked || con.hasKind("panic"):
		out.FailKind = results.KindPanic
		line := "guest reported a panic"
		for _, sp := range out.Splats {
			if sp.Kind == "panic" {
				line = sp.Line
				break
			}
		}
		out.Err = &PanicError{Line: line, Excerpt: con.Excerpt(60)}
	case out.Done:
		out.FailKind, out.Err = "", nil
	case out.FailKind != "":
	case killedBySignal(waitErr) != "":
		out.FailKind = results.KindQEMU
		out.Err = fmt.Errorf("QEMU was killed from outside (%s)%s", killedBySignal(waitErr), runningNote(running))
	case out.Ready == nil:
		out.FailKind = results.KindBootTimeout
		if exitedEarly(waitErr) {
			out.FailKind = results.KindQEMU
		}
		out.Err = fmt.Errorf("VM stopped before the guest agent started (shutdown: %s, qemu: %s); console: %s",
			orNone(out.Shutdown), orNone(lastLines(stderr.String(), 3)), orNone(lastLines(con.Excerpt(5), 5)))
	default:
		out.FailKind = results.KindAgent
		out.Err = fmt.Errorf("guest agent stopped before reporting done (shutdown: %s); console: %s",
			orNone(out.Shutdown), orNone(lastLines(con.Excerpt(5), 5)))
	}
	return out
}

// orClosed returns c, or a closed channel when c is nil.
func orClosed(c chan qmpEvent) chan qmpEvent {
	if c == nil {
		c = make(chan qmpEvent)
		close(c)
	}
	return c
}

// drainMessages collects results still in flight after QEMU exited.
func drainMessages(msgs <-chan guestMsg, out *vmOutcome, planned func(string) bool, seen map[string]bool, arts *artifactSaver, outs *outputSaver, wait time.Duration) {
	deadline := time.After(wait)
	for {
		select {
		case gm := <-msgs:
			if gm.err != nil {
				return
			}
			switch gm.m.Type {
			case protocol.TypeResult:
				if r := *gm.m.Result; planned(r.Check) && !seen[r.Check] && len(out.Results) < maxGuestResults {
					seen[r.Check] = true
					out.Results = append(out.Results, r)
				}
			case protocol.TypeArtifact:
				if planned(gm.m.Artifact.Check) {
					_ = arts.save(gm.m.Artifact)
				}
			case protocol.TypeOutput:
				_ = outs.save(gm.m.Output, planned)
			case protocol.TypeDone:
				out.Done = true
			}
		case <-deadline:
			return
		}
	}
}

// exitedEarly reports whether QEMU exited with an error status by itself.
func exitedEarly(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() > 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// shellQuote renders argv so that it can be pasted into a shell.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ',' || r == '=' || r == ':' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// dialUnix connects to a unix socket QEMU is about to create, retrying until it
// appears, ctx ends or QEMU exits.
func dialUnix(ctx context.Context, path string, exited <-chan struct{}) (net.Conn, error) {
	for {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, errors.New("QEMU exited")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// killedBySignal names the signal that ended QEMU, if one did. vmrunner's own
// kills happen only after the outcome is decided, so this is someone else's.
func killedBySignal(err error) string {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return ""
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal().String()
	}
	return ""
}

func runningNote(check string) string {
	if check == "" {
		return ""
	}
	return " while running check " + check
}
