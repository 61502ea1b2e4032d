package vmrunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

const (
	byeGrace = 10 * time.Second // how long the guest has to power off after done
	// checkGrace is added to a check's own timeout before the host decides
	// the guest is stuck: the agent reports its own timeouts first.
	checkGrace = 30 * time.Second
	// drainGrace is how long the channel may still deliver what the guest
	// wrote once QEMU has exited.
	drainGrace = time.Second
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
	// OnCheck, when set, is told each check the guest starts.
	OnCheck func(check string)
	// OnProgress, when set, is told the guest's progress lines (a check
	// saying what takes long: protocol.LogProgress), sanitised.
	OnProgress func(text string)
	// Output, when set, is told each piece of a test program's output.
	Output func(protocol.Output)
}

// vmOutcome is what happened to one VM. FailKind is "" only when the
// conversation ended with done and a clean power-off; otherwise Err says
// what went wrong, and the VM is reported as an error whatever its checks
// reported.
type vmOutcome struct {
	Ready    *protocol.Ready
	Results  []protocol.Result
	Done     bool
	FailKind results.ErrorKind
	Err      error
	Boot     time.Duration // QEMU start to the agent's first message
	Splats   []results.Splat
	Shutdown string // SHUTDOWN reason from QMP
	// Channel is the channel the guest spoke on: protocol.ChannelVirtio,
	// protocol.ChannelConsole, or "" if it said nothing.
	Channel string
	// Artifacts maps a result's check name to the files saved for it,
	// relative to the VM directory.
	Artifacts map[string][]string
}

// guestMsg is one message read from the control port, with its size, or the
// error that ended the stream.
type guestMsg struct {
	m    protocol.Message
	size int
	err  error
}

// runVM boots one VM, runs its plan and always leaves no QEMU behind. The
// QEMU process is qemuProcess's, the conversation session's; runVM watches
// both with its timers, then gathers vmFacts for classify.
func runVM(ctx context.Context, s vmSpec) vmOutcome {
	log := s.Log
	vmCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	facts := vmFacts{Timeout: s.Timeout, BootTimeout: s.BootTimeout, ByeGrace: byeGrace}
	var out vmOutcome
	finish := func() vmOutcome {
		facts.Interrupted = ctx.Err() != nil
		out.FailKind, out.Err = classify(facts)
		return out
	}

	p, err := startQEMU(vmCtx, qemuLaunch{
		Config: qemuConfig{
			Arch: s.Target.Arch, Kernel: s.Kernel, Initramfs: s.Initramfs,
			MemoryMiB: s.MemoryMiB, CPUs: s.CPUs, Accel: s.Accel, Profile: s.Profile, Append: s.Append,
		},
		Dir: s.Dir,
	})
	if err != nil {
		facts.StartErr = err
		return finish()
	}
	// Connect the console before the guest runs so that nothing it prints
	// is lost.
	con := &console{}
	conConn, err := p.DialConsole(vmCtx)
	if err != nil {
		p.Close()
		facts.StartErr = err
		return finish()
	}
	// The console also carries the guest's messages when its kernel has no
	// virtio console (protocol.FramePrefix): they are taken out of
	// console.log and go to the same session as the port's.
	frameMsgs := make(chan guestMsg)
	var conMsgs <-chan guestMsg = frameMsgs
	stopCon := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(frameMsgs)
		frames := &consoleFrames{s: protocol.NewFrameScanner(&telnetFilter{r: conConn}), stop: stopCon, msgs: frameMsgs}
		if err := con.capture(frames, filepath.Join(s.Dir, fileConsole)); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn("console capture", "err", err)
		}
	}()
	msgs, ctl, stopReading := readGuest(p)
	// Whatever happens, QEMU goes away and every goroutine ends.
	defer func() {
		p.Close()
		stopReading()
		close(stopCon)
		wg.Wait()
	}()
	if err := p.Resume(); err != nil {
		facts.StartErr = err
		return finish()
	}

	sess := newSession(s.Plan, s.Dir, defaultSessionLimits)
	sess.outs.live = s.Output
	defer sess.close()
	var (
		enc        *protocol.Encoder
		bootTimer  = time.NewTimer(s.BootTimeout)
		checkTimer <-chan time.Time // the running check overran its timeout + checkGrace
		byeTimer   <-chan time.Time // done arrived; the guest must power off
		drain      <-chan time.Time // QEMU exited; the channel may still deliver
		exited     = p.Exited()
		events     = p.Events()
	)
	defer bootTimer.Stop()
	// diagnose asks a guest that stopped making progress for task dumps and
	// waits for its console to print them.
	diagnose := func() {
		if err := sysrq(conConn, "tlw"); err != nil {
			log.Debug("sysrq", "err", err)
			return
		}
		con.waitFor("sysrq: Show Blocked State", 5*time.Second)
	}

	// handle takes one message from a channel; false ends the loop.
	handle := func(gm guestMsg, channel string) bool {
		if gm.err != nil {
			facts.ProtocolErr = fmt.Errorf("guest channel (%s): %w", channel, gm.err)
			return false
		}
		step, err := sess.acceptOn(channel, gm.m, gm.size)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				log.Warn("guest message", "err", err)
			}
			facts.ProtocolErr = err
			return false
		}
		switch {
		case step.SendPlan:
			out.Boot = time.Since(p.Started())
			log.Debug("agent ready", "release", sess.Ready.KernelRelease, "boot", out.Boot)
			if channel == protocol.ChannelConsole {
				enc = protocol.NewEncoder(protocol.FrameWriter{W: conConn})
			} else {
				enc = protocol.NewEncoder(<-ctl)
			}
			if err := enc.Send(protocol.Message{Type: protocol.TypePlan, Plan: &s.Plan}); err != nil {
				facts.ProtocolErr = fmt.Errorf("send plan: %w", err)
				return false
			}
		case step.StartCheck != "":
			log.Debug("check started", "check", step.StartCheck)
			checkTimer = nil
			if step.CheckTimeout > 0 {
				facts.CheckTimeout = step.CheckTimeout + checkGrace
				checkTimer = time.After(facts.CheckTimeout)
			}
			if s.OnCheck != nil {
				s.OnCheck(step.StartCheck)
			}
		case step.CheckReported:
			checkTimer = nil
		case step.SendBye:
			checkTimer = nil
			_ = enc.Send(protocol.Message{Type: protocol.TypeBye})
			byeTimer = time.After(byeGrace)
		case step.Log != nil:
			log.Debug("guest log", "level", step.Log.Level, "text", step.Log.Text)
			if step.Log.Level == protocol.LogProgress && s.OnProgress != nil {
				s.OnProgress(text.Truncate(step.Log.Text, 120))
			}
		}
		return true
	}
	// inUseEnded reports whether the channel in use (the port until the
	// guest has spoken) has ended: when it ends after QEMU's end, nothing
	// more can come; before, QEMU's end says why.
	inUseEnded := func() bool {
		if sess.Channel == protocol.ChannelConsole {
			return conMsgs == nil
		}
		return msgs == nil
	}

loop:
	for {
		select {
		case <-vmCtx.Done():
			if ctx.Err() == nil {
				facts.Watchdog = watchVM
				diagnose()
			}
			break loop
		case <-bootTimer.C:
			if sess.Ready == nil {
				facts.Watchdog = watchBoot
				diagnose()
				break loop
			}
		case <-checkTimer:
			facts.Watchdog = watchCheck
			diagnose()
			break loop
		case <-byeTimer:
			facts.Watchdog = watchPowerOff
			break loop
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			log.Debug("qmp event", "event", ev.Name, "reason", ev.Reason)
			facts.observe(ev)
		case gm, ok := <-msgs:
			if !ok {
				msgs = nil
				if exited == nil && inUseEnded() {
					break loop
				}
				continue
			}
			if !handle(gm, protocol.ChannelVirtio) {
				break loop
			}
		case gm, ok := <-conMsgs:
			if !ok {
				conMsgs = nil
				if exited == nil && inUseEnded() {
					break loop
				}
				continue
			}
			if !handle(gm, protocol.ChannelConsole) {
				break loop
			}
		case <-exited:
			exited = nil
			if inUseEnded() {
				break loop
			}
			drain = time.After(drainGrace)
		case <-drain:
			break loop
		}
	}

	p.Stop()
	// QMP's last events (SHUTDOWN, GUEST_PANICKED): the channel closes with
	// QEMU's end of the socket.
	if events != nil {
		for ev := range events {
			log.Debug("qmp event", "event", ev.Name, "reason", ev.Reason)
			facts.observe(ev)
		}
	}
	sess.close()
	out.Ready, out.Results, out.Done, out.Artifacts = sess.Ready, sess.Results, sess.Done, sess.Artifacts()
	out.Splats, out.Shutdown, out.Channel = con.Splats(), facts.Shutdown, sess.Channel
	facts.Ready, facts.Done, facts.Running = sess.Ready != nil, sess.Done, sess.Running()
	facts.Exit, facts.Stderr, facts.Console = p.Exit(), p.Stderr(), con.snapshot()
	// On the console channel the kernel's console is quiet: SysRq prints
	// its header line there, not the dump.
	facts.TaskDump = facts.Console.line("sysrq: Show State") != "" && sess.Channel != protocol.ChannelConsole
	return finish()
}

// observe records a QMP event.
func (f *vmFacts) observe(ev qmpEvent) {
	switch ev.Name {
	case "GUEST_PANICKED":
		f.Panicked = true
	case "SHUTDOWN":
		f.Shutdown = ev.Reason
		if ev.Reason == "guest-panic" {
			f.Panicked = true
		}
	}
}

// readGuest reads the guest's messages from the control port once it
// connects. The channel closes at the end of the stream; a decoding error is
// delivered before it closes. ctl delivers the connection, for replies.
func readGuest(p *qemuProcess) (<-chan guestMsg, <-chan net.Conn, func()) {
	msgs := make(chan guestMsg)
	ctl := make(chan net.Conn, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(msgs)
		c, err := p.AcceptControl()
		if err != nil {
			return
		}
		ctl <- c
		cr := &countingReader{r: c}
		dec := protocol.NewDecoder(cr)
		for {
			before := cr.n
			m, err := dec.Next()
			if err != nil && !protocolDecodeError(err) {
				return // the end of the stream: EOF, or QEMU closed it
			}
			select {
			case msgs <- guestMsg{m: m, size: int(cr.n - before), err: err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var once sync.Once
	// Once QEMU has exited, the connection and listener are closed
	// (qemuProcess), so the reader ends.
	return msgs, ctl, func() {
		once.Do(func() { close(stop) })
		<-done
	}
}

// protocolDecodeError reports whether err is the guest's fault rather than
// the end of the stream.
func protocolDecodeError(err error) bool {
	return errors.Is(err, protocol.ErrTooLarge) || errors.Is(err, protocol.ErrMalformed) || errors.Is(err, protocol.ErrBadVersion)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
