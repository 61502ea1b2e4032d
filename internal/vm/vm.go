package vm

import (
	"context"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
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
	"github.com/vmrunner/vmrunner/snapshot"
)

const (
	byeGrace = 10 * time.Second // how long the guest has to power off after done
	// checkGrace is added to a check's own timeout before the host decides
	// the guest is stuck: the agent reports its own timeouts first.
	checkGrace = 30 * time.Second
	// drainGrace is how long the channel may still deliver what the guest
	// wrote once QEMU has exited.
	drainGrace = time.Second
	// frameErrGrace is how long a guest whose console frame broke may go
	// on printing (a panic under way) before it is judged.
	frameErrGrace = 3 * time.Second
)

// Spec is one VM to boot.
type Spec struct {
	Target      matrix.Target
	Kernel      *kernels.Kernel
	Initramfs   string
	Plan        protocol.Plan
	Accel       qemu.Accel
	Profile     qemu.Profile
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
	// Files go to the guest after the plan; Dirs are made before them.
	Files []PlanFile
	Dirs  []string
	// Snapshot, when set, restores the VM from a snapshot or saves it at
	// ready (vmSnapshot).
	Snapshot *vmSnapshot
	// Rounds, when set, keeps the VM up after done (repro --watch): each
	// round it delivers is run like the first plan (which must have More),
	// and Round is told each plan's outcome; once Rounds closes, the host
	// says bye and the guest powers off.
	Rounds <-chan Round
	Round  func(RoundOutcome)
}

// Round is one more plan for a VM kept up, with its files.
type Round struct {
	Plan  protocol.Plan
	Files []PlanFile
}

// RoundOutcome is what the guest reported for one plan.
type RoundOutcome struct {
	Results []protocol.Result
	// Artifacts are relative to Dir, the VM's directory.
	Artifacts map[string][]string
	Dir       string
}

// Outcome is what happened to one VM. FailKind is "" only when the
// conversation ended with done and a clean power-off; otherwise Err says
// what went wrong, and the VM is reported as an error whatever its checks
// reported.
type Outcome struct {
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
	// Prepared is what the agent did with the host's clock, entropy and
	// files before its checks.
	Prepared *protocol.Prepared
	// RestoreErr: QEMU could not load the snapshot's state, and nothing
	// of the guest ran (FailKind is KindQEMU); the VM is to boot instead.
	RestoreErr error
	// Saved: the VM was saved as a snapshot when its agent was ready,
	// standing still for SaveTime.
	Saved    bool
	SaveTime time.Duration
}

// guestMsg is one message read from the control port, with its size, or the
// error that ended the stream.
type guestMsg struct {
	m    protocol.Message
	size int
	err  error
}

// qemuConfig is the QEMU command line of the VM s describes; snapshots
// says whether its state is saved or restored (the snapshot's key is made
// from the same).
func (s Spec) qemuConfig(snapshots bool) qemu.Config {
	return qemu.Config{
		Arch: s.Target.Arch, Kernel: s.Kernel, Initramfs: s.Initramfs,
		MemoryMiB: s.MemoryMiB, CPUs: s.CPUs, Accel: s.Accel, Profile: s.Profile, Append: s.Append,
		WarmBTF: snapshots,
	}
}

// Run boots one VM, runs its plan and always leaves no QEMU behind. The
// QEMU process is qemu.Process's, the conversation session's; Run watches
// both with its timers, then gathers vmFacts for classify.
func Run(ctx context.Context, s Spec) Outcome {
	log := s.Log
	vmCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	facts := vmFacts{Timeout: s.Timeout, BootTimeout: s.BootTimeout, ByeGrace: byeGrace}
	var out Outcome
	finish := func() Outcome {
		facts.Interrupted = ctx.Err() != nil
		out.FailKind, out.Err = classify(facts)
		return out
	}

	cfg := s.qemuConfig(s.Snapshot != nil)
	var restore *snapshot.Snapshot
	var verified chan error
	if s.Snapshot != nil && s.Snapshot.Restore != nil {
		restore = s.Snapshot.Restore
		cfg.Incoming = restore.State
		defer restore.Release()
		// The state is hashed while QEMU loads it: a byte changed with
		// the file's time put back passes the cache's checks, not this.
		verified = make(chan error, 1)
		go func() { verified <- restore.Verify() }()
	}
	// startFailed ends a VM whose QEMU did not get going. When it was
	// loading a snapshot, the state is the suspect however far QEMU got
	// (one that refuses a state, "Not a migration stream", can exit
	// before it answers QMP, before its console is connected, or while
	// loading): the snapshot is deleted and the VM boots (run.go).
	startFailed := func(err error) Outcome {
		facts.StartErr = err
		if restore != nil {
			out.RestoreErr = err
		}
		return finish()
	}
	p, err := qemu.Start(vmCtx, qemu.Launch{Config: cfg, Dir: s.Dir})
	if err != nil {
		return startFailed(err)
	}
	// Connect the console before the guest runs so that nothing it prints
	// is lost.
	con := &qemu.Console{}
	conConn, err := p.DialConsole(vmCtx)
	if err != nil {
		p.Close()
		return startFailed(err)
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
		frames := &consoleFrames{s: protocol.NewFrameScanner(qemu.NewTelnetFilter(conConn)), stop: stopCon, msgs: frameMsgs}
		if err := con.Capture(frames, filepath.Join(s.Dir, qemu.FileConsole)); err != nil && !errors.Is(err, net.ErrClosed) {
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
	if restore != nil {
		// Until QEMU has read the state, the snapshot is held: nothing
		// deletes it under QEMU.
		err := p.WaitIncoming(vmCtx)
		if err == nil {
			select {
			case err = <-verified:
			case <-vmCtx.Done():
				err = vmCtx.Err()
			}
		}
		restore.Release()
		if err != nil {
			return startFailed(err)
		}
	}
	if err := p.Resume(); err != nil {
		facts.StartErr = err
		return finish()
	}

	sess := newSession(s.Plan, s.Dir, defaultSessionLimits)
	sess.outs.live = s.Output
	defer func() { sess.close() }()
	var (
		enc       *protocol.Encoder
		filesDone chan error // the plan's files are sent, or could not be
		committed chan error // the snapshot saved at ready is on disk, or is not
	)
	// sendPlan sends the plan with the host's clock and entropy on the
	// channel the guest speaks on, then its files, those in their own
	// goroutine: they may take seconds, and the loop below watches the VM
	// meanwhile.
	sendPlan := func() error {
		if enc == nil {
			if sess.Channel == protocol.ChannelConsole {
				enc = protocol.NewEncoder(protocol.FrameWriter{W: conConn})
			} else {
				select {
				case conn := <-ctl:
					enc = protocol.NewEncoder(conn)
				case <-p.Exited():
					return errors.New("QEMU exited before its control port connected")
				case <-vmCtx.Done():
					return vmCtx.Err()
				}
			}
		}
		plan := s.Plan
		plan.Host = hostState(restore)
		for _, f := range s.Files {
			plan.Files = append(plan.Files, f.Spec)
		}
		plan.Dirs = s.Dirs
		if err := enc.Send(protocol.Message{Type: protocol.TypePlan, Plan: &plan}); err != nil {
			return fmt.Errorf("send plan: %w", err)
		}
		sess.sent(plan)
		log.Debug("plan sent", "checks", len(plan.Checks), "files", len(plan.Files), "boot", plan.Host.Boot)
		if len(s.Files) > 0 {
			filesDone = make(chan error, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				filesDone <- sendPlanFiles(enc, s.Files)
			}()
		}
		return nil
	}
	if restore != nil {
		// The agent said ready before the VM was saved; it waits for a plan
		// on the channel it spoke on.
		sess.restored(restore.Ready, restore.Channel)
		out.Boot = time.Since(p.Started())
		log.Debug("restored", "snapshot", restore.ID[:12], "saved", restore.Saved, "restore", out.Boot)
		if err := sendPlan(); err != nil {
			facts.ProtocolErr = err
			return finish()
		}
	}
	var (
		bootTimer  = time.NewTimer(s.BootTimeout)
		checkTimer <-chan time.Time // the running check overran its timeout + checkGrace
		byeTimer   <-chan time.Time // done arrived; the guest must power off
		drain      <-chan time.Time // QEMU exited; the channel may still deliver
		exited     = p.Exited()
		events     = p.Events()
		rounds     <-chan Round // the guest is done with a plan and waits for the next
		heard      bool         // the guest sent a message
	)
	defer bootTimer.Stop()
	// diagnose asks a guest that stopped making progress for task dumps and
	// waits for its console to print them. On the console channel the
	// kernel prints emergencies only (the agent set kernel.printk to 1):
	// SysRq 7 raises the console's log level first, so that the dumps are
	// printed there too; frames no longer matter, the VM is judged.
	diagnose := func() {
		// Frames arriving meanwhile are dropped: unread, they would hold
		// up the console text the dumps are in.
		stopDrain := dropFrames(conMsgs)
		defer stopDrain()
		quiet := sess.Channel == protocol.ChannelConsole
		raised, dumped, err := qemu.AskDumps(conConn, con, quiet)
		if err != nil {
			log.Debug("sysrq", "err", err)
		}
		facts.LoglevelRaised = raised
		facts.TaskDump = dumped && (!quiet || raised)
	}

	// handle takes one message from a channel; false ends the loop.
	handle := func(gm guestMsg, channel string) bool {
		if facts.ProtocolErr != nil {
			return true // after a broken frame: the VM is judged, see below
		}
		if gm.err != nil {
			facts.ProtocolErr = fmt.Errorf("guest channel (%s): %w", channel, gm.err)
			if channel == protocol.ChannelConsole && sess.Channel == protocol.ChannelConsole {
				// A frame broken on the console was most often cut by the
				// kernel's own emergency text: a panic or an oops whose
				// end is still coming. The guest gets frameErrGrace to
				// finish it (or to stop) before the VM is judged.
				drain = time.After(frameErrGrace)
				return true
			}
			return false
		}
		heard = true
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
			log.Debug("agent ready", "release", sess.Ready.KernelRelease, "boot", out.Boot, "channel", channel)
			for _, n := range sess.Ready.Notes {
				log.Debug("guest log", "level", n.Level, "text", n.Text)
			}
			if s.Snapshot != nil {
				var err error
				if committed, err = saveAtReady(vmCtx, log, p, s.Snapshot, *sess.Ready, channel, out.Boot, &out, &wg); err != nil {
					facts.StartErr = err
					return false
				}
			}
			if err := sendPlan(); err != nil {
				facts.ProtocolErr = err
				return false
			}
		case step.Prepared != nil:
			log.Debug("guest prepared", "boot", step.Prepared.Boot, "clock_step_ms", step.Prepared.ClockStepMS,
				"entropy", step.Prepared.EntropyBytes, "files", step.Prepared.Files, "file_bytes", step.Prepared.FileBytes)
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
			log.Debug("check reported", "check", gm.m.Result.Check)
			checkTimer = nil
		case step.SendBye && s.Rounds != nil:
			checkTimer = nil
			if s.Round != nil {
				s.Round(RoundOutcome{Results: sess.Results, Artifacts: sess.Artifacts(), Dir: s.Dir})
			}
			rounds = s.Rounds
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
			// No sign of the agent: no ready from a booted VM, nothing
			// from a restored one.
			if !heard {
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
		case r, ok := <-rounds:
			rounds = nil
			if !ok {
				_ = enc.Send(protocol.Message{Type: protocol.TypeBye})
				byeTimer = time.After(byeGrace)
				continue
			}
			// The same agent, a new conversation about the next plan.
			ready, channel := *sess.Ready, sess.Channel
			sess.close()
			sess = newSession(r.Plan, s.Dir, defaultSessionLimits)
			sess.outs.live = s.Output
			sess.restored(ready, channel)
			s.Plan, s.Files = r.Plan, r.Files
			if err := sendPlan(); err != nil {
				facts.ProtocolErr = err
				break loop
			}
		case err := <-filesDone:
			filesDone = nil
			if err == nil {
				// The guest read them (the socket holds little): a
				// restored guest, whose first word is prepared, after
				// its files, is alive however long they took.
				heard = true
			}
			select {
			case <-p.Exited():
				// QEMU's end is the story; the loop hears it next.
			default:
				if err != nil {
					facts.SendErr = fmt.Errorf("send the plan's files: %w", err)
					break loop
				}
			}
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
	if committed != nil {
		if err := <-committed; err != nil {
			log.Warn("snapshot not saved", "err", err)
		} else {
			out.Saved = true
		}
	}
	out.Ready, out.Results, out.Done, out.Artifacts = sess.Ready, sess.Results, sess.Done, sess.Artifacts()
	out.Prepared = sess.Prepared
	out.Splats, out.Shutdown, out.Channel = con.Splats(), facts.Shutdown, sess.Channel
	facts.Ready, facts.Done, facts.Running = sess.Ready != nil, sess.Done, sess.Running()
	facts.Exit, facts.Stderr, facts.Console = p.Exit(), p.Stderr(), con.Snapshot()
	return finish()
}

// dropFrames reads and drops ch's messages until the returned function is
// called.
func dropFrames(ch <-chan guestMsg) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					<-stop
					return
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// observe records a QMP event.
func (f *vmFacts) observe(ev qemu.Event) {
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
func readGuest(p *qemu.Process) (<-chan guestMsg, <-chan net.Conn, func()) {
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
	// (qemu.Process), so the reader ends.
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
