package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/text"
	"time"
)

// QEMU's migration stream, written to a file and read back, is how a VM is
// saved when its agent is ready and restored by later runs (package
// snapshot). The stream holds the guest's memory and every device's state;
// what is not in it (the sockets of the chardevs) is connected anew by the
// restoring QEMU, whose arguments must otherwise be those of the saved one.

// migrateBandwidth lifts QEMU's default limit on migration bandwidth, which
// is meant for a live migration over a network: to a local file it made
// saving a 74 MB state take 0.5 s instead of 0.1 s here.
const migrateBandwidth = 1 << 40 // bytes per second

// migrateTimeout bounds a save or a load: a few hundred MB to a local file.
const migrateTimeout = 2 * time.Minute

// migrationStatus is the part of query-migrate's reply vmrunner reads.
type migrationStatus struct {
	Status    string `json:"status"`
	ErrorDesc string `json:"error-desc"`
}

// SaveState stops the VM and writes its state to path (which exists: QEMU's
// shell truncates it, keeping its mode). The VM stays stopped: Resume lets
// it go on.
func (p *Process) SaveState(ctx context.Context, path string) error {
	if err := p.mon.run("stop", 5*time.Second); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := p.mon.call("migrate-set-parameters", map[string]any{"max-bandwidth": migrateBandwidth}, 5*time.Second); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := p.mon.call("migrate", map[string]any{"uri": "exec:cat > " + shellQuote([]string{path})}, 5*time.Second); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := p.waitMigration(ctx); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	// query-migrate says "completed" before QEMU's migration cleanup has
	// moved the run state on from finish-migrate; a cont in between fails
	// with "Migration is not finalized yet" (seen here under load on QEMU
	// 7.2, arm64). Wait for the run state to move on.
	if err := p.waitLeft(ctx, "finish-migrate"); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// waitLeft polls query-status until the VM's run state is not state.
func (p *Process) waitLeft(ctx context.Context, state string) error {
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, err := p.mon.call("query-status", nil, 5*time.Second)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("query-status: %w", err)
		}
		if st.Status != state {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("run state still %s: %w", state, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("QEMU exited in run state %s", state)
		case <-tick.C:
		}
	}
}

// WaitIncoming waits until QEMU has loaded the state it was started with
// (Config.Incoming). A state QEMU cannot load ends QEMU: the error then
// has what it said.
func (p *Process) WaitIncoming(ctx context.Context) error {
	if err := p.waitMigration(ctx); err != nil {
		select {
		case <-p.exited:
			return fmt.Errorf("load state: QEMU exited (%s): %s", exitStatus(p.waitErr), text.LastLines(p.Stderr(), 3))
		case <-time.After(time.Second):
		}
		return fmt.Errorf("load state: %w", err)
	}
	return nil
}

// waitMigration polls query-migrate until the migration completed or failed.
func (p *Process) waitMigration(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, err := p.mon.call("query-migrate", nil, 5*time.Second)
		if err != nil {
			return err
		}
		var st migrationStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("query-migrate: %w", err)
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", st.Status, text.OrNone(st.ErrorDesc))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migration not done (%s): %w", text.OrNone(st.Status), ctx.Err())
		case <-p.exited:
			return fmt.Errorf("QEMU exited during the migration")
		case <-tick.C:
		}
	}
}
