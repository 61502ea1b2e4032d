package vm

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// watch runs the VM until its conversation ends, QEMU ends, or a timer
// judges it: the boot timer, the running check's, the power-off's after
// done, the VM's own timeout.
func (v *vmLife) watch() {
	v.bootTimer = time.NewTimer(v.s.BootTimeout)
	defer v.bootTimer.Stop()
	v.exited, v.events = v.p.Exited(), v.p.Events()
	for v.next() {
	}
}

// next waits for the next thing to happen to the VM and handles it; false
// ends the watch.
func (v *vmLife) next() bool {
	select {
	case <-v.vmCtx.Done():
		if v.ctx.Err() == nil {
			v.facts.Watchdog = watchVM
			v.diagnose()
		}
		return false
	case <-v.bootTimer.C:
		// No sign of the agent: no ready from a booted VM, nothing from a
		// restored one.
		if !v.heard {
			v.facts.Watchdog = watchBoot
			v.diagnose()
			return false
		}
	case <-v.checkTimer:
		v.facts.Watchdog = watchCheck
		v.diagnose()
		return false
	case <-v.byeTimer:
		v.facts.Watchdog = watchPowerOff
		return false
	case ev, ok := <-v.events:
		if !ok {
			v.events = nil
			return true
		}
		v.qmpEvent(ev)
	case gm, ok := <-v.msgs:
		if !ok {
			v.msgs = nil
			return v.exited != nil || !v.inUseEnded()
		}
		return v.handle(gm, protocol.ChannelVirtio)
	case gm, ok := <-v.conMsgs:
		if !ok {
			v.conMsgs = nil
			return v.exited != nil || !v.inUseEnded()
		}
		return v.handle(gm, protocol.ChannelConsole)
	case <-v.exited:
		v.log.Debug("qemu exited")
		v.exited = nil
		if v.inUseEnded() {
			return false
		}
		v.drain = time.After(drainGrace)
	case <-v.drain:
		return false
	case r, ok := <-v.rounds:
		return v.nextRound(r, ok)
	case err := <-v.filesDone:
		return v.filesSent(err)
	}
	return true
}

// inUseEnded reports whether the channel in use (the port until the guest
// has spoken) has ended: when it ends after QEMU's end, nothing more can
// come; before, QEMU's end says why.
func (v *vmLife) inUseEnded() bool {
	if v.sess.Channel == protocol.ChannelConsole {
		return v.conMsgs == nil
	}
	return v.msgs == nil
}

// qmpEvent logs and records a QMP event.
func (v *vmLife) qmpEvent(ev qemu.Event) {
	v.log.Debug("qmp event", "event", ev.Name, "reason", ev.Reason)
	v.facts.observe(ev)
}

// diagnose asks a guest that stopped making progress for task dumps and
// waits for its console to print them. On the console channel the kernel
// prints emergencies only (the agent set kernel.printk to 1): SysRq 7
// raises the console's log level first, so that the dumps are printed
// there too; frames no longer matter, the VM is judged.
func (v *vmLife) diagnose() {
	// Frames arriving meanwhile are dropped: unread, they would hold up
	// the console text the dumps are in.
	stopDrain := dropFrames(v.conMsgs)
	defer stopDrain()
	quiet := v.sess.Channel == protocol.ChannelConsole
	raised, dumped, err := qemu.AskDumps(v.conConn, v.con, quiet)
	if err != nil {
		v.log.Debug("sysrq", "err", err)
	}
	v.facts.LoglevelRaised = raised
	v.facts.TaskDump = dumped && (!quiet || raised)
}

// handle takes one message from a channel; false ends the watch.
func (v *vmLife) handle(gm guestMsg, channel string) bool {
	if v.facts.ProtocolErr != nil {
		return true // after a broken frame: the VM is judged, see below
	}
	if gm.err != nil {
		v.facts.ProtocolErr = fmt.Errorf("guest channel (%s): %w", channel, gm.err)
		if channel == protocol.ChannelConsole && v.sess.Channel == protocol.ChannelConsole {
			// A frame broken on the console was most often cut by the
			// kernel's own emergency text: a panic or an oops whose end
			// is still coming. The guest gets frameErrGrace to finish it
			// (or to stop) before the VM is judged.
			v.drain = time.After(frameErrGrace)
			return true
		}
		return false
	}
	v.heard = true
	step, err := v.sess.acceptOn(channel, gm.m, gm.size)
	if err != nil {
		if !errors.Is(err, errProtocol) {
			v.log.Warn("guest message", "err", err)
		}
		v.facts.ProtocolErr = err
		return false
	}
	return v.follow(step, gm.m, channel)
}

// follow does what the session says after message m; false ends the watch.
func (v *vmLife) follow(step sessionStep, m protocol.Message, channel string) bool {
	switch {
	case step.SendPlan:
		return v.agentReady(channel)
	case step.Prepared != nil:
		v.log.Debug("guest prepared", "boot", step.Prepared.Boot, "clock_step_ms", step.Prepared.ClockStepMS,
			"entropy", step.Prepared.EntropyBytes, "files", step.Prepared.Files, "file_bytes", step.Prepared.FileBytes)
	case step.StartCheck != "":
		v.log.Debug("check started", "check", step.StartCheck)
		v.checkTimer = nil
		if step.CheckTimeout > 0 {
			v.facts.CheckTimeout = step.CheckTimeout + checkGrace
			v.checkTimer = time.After(v.facts.CheckTimeout)
		}
		if v.s.OnCheck != nil {
			v.s.OnCheck(step.StartCheck)
		}
	case step.CheckReported:
		v.log.Debug("check reported", "check", m.Result.Check)
		v.checkTimer = nil
	case step.SendBye && v.s.Rounds != nil:
		v.checkTimer = nil
		if v.s.Round != nil {
			v.s.Round(RoundOutcome{Results: v.sess.Results, Artifacts: v.sess.Artifacts(), Dir: v.s.Dir})
		}
		v.rounds = v.s.Rounds
	case step.SendBye:
		v.log.Debug("guest done", "results", len(v.sess.Results))
		v.checkTimer = nil
		v.sayBye()
	case step.Log != nil:
		v.log.Debug("guest log", "level", step.Log.Level, "text", step.Log.Text)
		if step.Log.Level == protocol.LogProgress && v.s.OnProgress != nil {
			v.s.OnProgress(text.Truncate(step.Log.Text, 120))
		}
	}
	return true
}

// agentReady saves a snapshot when the VM is to have one, then sends the
// plan; false ends the watch.
func (v *vmLife) agentReady(channel string) bool {
	v.out.Boot = time.Since(v.p.Started())
	v.log.Debug("agent ready", "release", v.sess.Ready.KernelRelease, "boot", v.out.Boot, "channel", channel)
	for _, n := range v.sess.Ready.Notes {
		v.log.Debug("guest log", "level", n.Level, "text", n.Text)
	}
	if v.s.Snapshot != nil {
		committed, err := saveAtReady(v.vmCtx, v.log, v.p, v.s.Snapshot, *v.sess.Ready, channel, v.out.Boot, &v.out, &v.wg)
		if err != nil {
			v.facts.StartErr = err
			return false
		}
		v.committed = committed
	}
	if err := v.sendPlan(); err != nil {
		v.facts.ProtocolErr = err
		return false
	}
	return true
}

// sayBye tells the guest to power off, which it must do within byeGrace.
func (v *vmLife) sayBye() {
	_ = v.enc.Send(protocol.Message{Type: protocol.TypeBye})
	v.byeTimer = time.After(byeGrace)
}

// nextRound starts the conversation about the next plan of a VM kept up,
// or says bye once there are no more (ok false); false ends the watch.
func (v *vmLife) nextRound(r Round, ok bool) bool {
	v.rounds = nil
	if !ok {
		v.sayBye()
		return true
	}
	// The same agent, a new conversation about the next plan.
	ready, channel := *v.sess.Ready, v.sess.Channel
	v.sess.close()
	v.sess = v.openSession(r.Plan)
	v.sess.restored(ready, channel)
	v.s.Plan, v.s.Files = r.Plan, r.Files
	if err := v.sendPlan(); err != nil {
		v.facts.ProtocolErr = err
		return false
	}
	return true
}

// filesSent hears that the plan's files went out, or could not; false
// ends the watch.
func (v *vmLife) filesSent(err error) bool {
	v.filesDone = nil
	if err == nil {
		// The guest read them (the socket holds little): a restored guest,
		// whose first word is prepared, after its files, is alive however
		// long they took.
		v.heard = true
	}
	select {
	case <-v.p.Exited():
		// QEMU's end is the story; the watch hears it next.
	default:
		if err != nil {
			v.facts.SendErr = fmt.Errorf("send the plan's files: %w", err)
			return false
		}
	}
	return true
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
