package vm

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

	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
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
// QEMU process is qemu.Process's, the conversation session's; a vmLife
// watches both with its timers, then gathers vmFacts for classify.
func Run(ctx context.Context, s Spec) Outcome {
	vmCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	v := &vmLife{
		ctx: ctx, vmCtx: vmCtx, s: s, log: s.Log,
		facts: vmFacts{Timeout: s.Timeout, BootTimeout: s.BootTimeout, ByeGrace: byeGrace},
	}
	// Whatever happens, QEMU goes away and every goroutine ends.
	defer v.release()
	if err := v.start(); err != nil {
		return v.startFailed(err)
	}
	if err := v.p.Resume(); err != nil {
		v.facts.StartErr = err
		return v.finish()
	}
	v.sess = v.openSession(s.Plan)
	if v.restore != nil {
		if err := v.planRestored(); err != nil {
			v.facts.ProtocolErr = err
			return v.finish()
		}
	}
	v.watch()
	return v.collect()
}

// vmLife is one VM from its start to its Outcome: what Run's steps share.
type vmLife struct {
	ctx   context.Context // the run's: its end is an interruption
	vmCtx context.Context // ctx bounded by the VM's timeout
	s     Spec            // Plan and Files are the current round's
	log   *slog.Logger
	facts vmFacts
	out   Outcome

	restore  *snapshot.Snapshot // the snapshot restored, or nil on a boot
	verified chan error         // the snapshot's state hashed as it should

	p       *qemu.Process
	con     *qemu.Console
	conConn net.Conn
	// conMsgs are the frames read from the console, msgs the control
	// port's messages; each is nil once it has ended.
	conMsgs     <-chan guestMsg
	msgs        <-chan guestMsg
	ctl         <-chan net.Conn // the control port's connection, for replies
	stopReading func()
	stopCon     chan struct{} // non-nil once the reading goroutines run
	wg          sync.WaitGroup

	sess      *session
	enc       *protocol.Encoder
	filesDone chan error // the plan's files are sent, or could not be
	committed chan error // the snapshot saved at ready is on disk, or is not

	// The watch's timers and sources (watch.go).
	bootTimer  *time.Timer
	checkTimer <-chan time.Time // the running check overran its timeout + checkGrace
	byeTimer   <-chan time.Time // done arrived; the guest must power off
	drain      <-chan time.Time // QEMU exited; the channel may still deliver
	exited     <-chan struct{}
	events     <-chan qemu.Event
	rounds     <-chan Round // the guest is done with a plan and waits for the next
	heard      bool         // the guest sent a message
}

// finish classifies what was observed into the Outcome.
func (v *vmLife) finish() Outcome {
	v.facts.Interrupted = v.ctx.Err() != nil
	v.out.FailKind, v.out.Err = classify(v.facts)
	return v.out
}

// startFailed ends a VM whose QEMU did not get going. When it was loading
// a snapshot, the state is the suspect however far QEMU got (one that
// refuses a state, "Not a migration stream", can exit before it answers
// QMP, before its console is connected, or while loading): the snapshot
// is deleted and the VM boots (internal/runner).
func (v *vmLife) startFailed(err error) Outcome {
	v.facts.StartErr = err
	if v.restore != nil {
		v.out.RestoreErr = err
	}
	return v.finish()
}

// start starts QEMU, stopped, with its console and control port being read
// before the guest runs so that nothing it says is lost; restoring a
// snapshot, it returns once QEMU has read and checked the state.
func (v *vmLife) start() error {
	cfg := v.s.qemuConfig(v.s.Snapshot != nil)
	if v.s.Snapshot != nil && v.s.Snapshot.Restore != nil {
		restore, verified := v.s.Snapshot.Restore, make(chan error, 1)
		v.restore, v.verified = restore, verified
		cfg.Incoming = restore.State
		// The state is hashed while QEMU loads it: a byte changed with
		// the file's time put back passes the cache's checks, not this.
		go func() { verified <- restore.Verify() }()
	}
	p, err := qemu.Start(v.vmCtx, qemu.Launch{Config: cfg, Dir: v.s.Dir})
	if err != nil {
		return err
	}
	conConn, err := p.DialConsole(v.vmCtx)
	if err != nil {
		p.Close()
		return err
	}
	v.p, v.conConn = p, conConn
	v.captureConsole()
	v.msgs, v.ctl, v.stopReading = readGuest(p)
	if v.restore != nil {
		return v.waitRestored()
	}
	return nil
}

// captureConsole writes the console to console.log. The console also
// carries the guest's messages when its kernel has no virtio console
// (protocol.FramePrefix): they are taken out of console.log and go to the
// same session as the port's, through conMsgs.
func (v *vmLife) captureConsole() {
	con, conn, dir, log := &qemu.Console{}, v.conConn, v.s.Dir, v.log
	frameMsgs, stop := make(chan guestMsg), make(chan struct{})
	v.con, v.conMsgs, v.stopCon = con, frameMsgs, stop
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer close(frameMsgs)
		frames := &consoleFrames{s: protocol.NewGuestFrameScanner(qemu.NewTelnetFilter(conn)), stop: stop, msgs: frameMsgs}
		if err := con.Capture(frames, filepath.Join(dir, qemu.FileConsole)); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn("console capture", "err", err)
		}
	}()
}

// waitRestored holds the snapshot until QEMU has read its state, so that
// nothing deletes it under QEMU, and says whether the state was whole.
func (v *vmLife) waitRestored() error {
	err := v.p.WaitIncoming(v.vmCtx)
	if err == nil {
		select {
		case err = <-v.verified:
		case <-v.vmCtx.Done():
			err = v.vmCtx.Err()
		}
	}
	v.restore.Release()
	return err
}

// release ends the session, QEMU and every goroutine, and lets the
// snapshot go.
func (v *vmLife) release() {
	if v.sess != nil {
		v.sess.close()
	}
	if v.stopCon != nil {
		v.p.Close()
		v.stopReading()
		close(v.stopCon)
		v.wg.Wait()
	}
	if v.restore != nil {
		v.restore.Release()
	}
}

// openSession starts the conversation about plan.
func (v *vmLife) openSession(plan protocol.Plan) *session {
	sess := newSession(plan, v.s.Dir, defaultSessionLimits)
	sess.outs.live = v.s.Output
	return sess
}

// planRestored sends the plan to a restored agent: it said ready before
// the VM was saved, and waits for a plan on the channel it spoke on.
func (v *vmLife) planRestored() error {
	v.sess.restored(v.restore.Ready, v.restore.Channel)
	v.out.Boot = time.Since(v.p.Started())
	v.log.Debug("restored", "snapshot", v.restore.ID[:12], "saved", v.restore.Saved, "restore", v.out.Boot)
	return v.sendPlan()
}

// sendPlan sends the plan with the host's clock and entropy on the channel
// the guest speaks on, then its files, those in their own goroutine: they
// may take seconds, and the watch meanwhile watches the VM.
func (v *vmLife) sendPlan() error {
	if v.enc == nil {
		enc, err := v.encoder()
		if err != nil {
			return err
		}
		v.enc = enc
	}
	plan := v.s.Plan
	plan.Host = hostState(v.restore)
	for _, f := range v.s.Files {
		plan.Files = append(plan.Files, f.Spec)
	}
	plan.Dirs = v.s.Dirs
	if err := v.enc.Send(protocol.Message{Type: protocol.TypePlan, Plan: &plan}); err != nil {
		return fmt.Errorf("send plan: %w", err)
	}
	v.sess.sent(plan)
	v.log.Debug("plan sent", "checks", len(plan.Checks), "files", len(plan.Files), "boot", plan.Host.Boot)
	if len(v.s.Files) > 0 {
		done, enc, files := make(chan error, 1), v.enc, v.s.Files
		v.filesDone = done
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			done <- sendPlanFiles(enc, files)
		}()
	}
	return nil
}

// encoder writes to the guest on the channel it speaks on: the console's
// frames, or the control port once it is connected.
func (v *vmLife) encoder() (*protocol.Encoder, error) {
	if v.sess.Channel == protocol.ChannelConsole {
		return protocol.NewEncoder(protocol.FrameWriter{W: v.conConn}), nil
	}
	select {
	case conn := <-v.ctl:
		return protocol.NewEncoder(conn), nil
	case <-v.p.Exited():
		return nil, errors.New("QEMU exited before its control port connected")
	case <-v.vmCtx.Done():
		return nil, v.vmCtx.Err()
	}
}

// collect stops QEMU, hears QMP's last events (SHUTDOWN, GUEST_PANICKED:
// the channel closes with QEMU's end of the socket) and gathers what the
// VM said and did into its Outcome.
func (v *vmLife) collect() Outcome {
	v.p.Stop()
	if v.events != nil {
		for ev := range v.events {
			v.qmpEvent(ev)
		}
	}
	v.sess.close()
	if v.committed != nil {
		if err := <-v.committed; err != nil {
			v.log.Warn("snapshot not saved", "err", err)
		} else {
			v.out.Saved = true
		}
	}
	sess, out := v.sess, &v.out
	out.Ready, out.Results, out.Done, out.Artifacts = sess.Ready, sess.Results, sess.Done, sess.Artifacts()
	out.Prepared = sess.Prepared
	out.Splats, out.Shutdown, out.Channel = v.con.Splats(), v.facts.Shutdown, sess.Channel
	v.facts.Ready, v.facts.Done, v.facts.Running = sess.Ready != nil, sess.Done, sess.Running()
	v.facts.Exit, v.facts.Stderr, v.facts.Console = v.p.Exit(), v.p.Stderr(), v.con.Snapshot()
	return v.finish()
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
