package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// prepare makes the guest tell the truth before any check of plan runs:
// its wall clock is the host's, its random pool has the host's entropy and
// a reseeded CRNG, and the plan's files are in place and verified. received
// is when the plan was read, so that the time the files take does not count
// against the clock.
//
// Both matter most after a restore: the guest's clock stood still while the
// snapshot was on disk, and every VM restored from one snapshot starts with
// the same random state. They are applied after a boot too, where they cost
// nothing: one code path, and a booted guest's clock is right only to the
// second (the RTC).
func (a *Agent) prepare(ctx context.Context, from <-chan incoming, plan *protocol.Plan, received time.Time) (*protocol.Prepared, error) {
	h := plan.Host
	setClock, addEntropy := a.SetClock, a.AddEntropy
	if setClock == nil {
		setClock = setWallClock
	}
	if addEntropy == nil {
		addEntropy = addHostEntropy
	}
	guestNow := time.Now()
	hostNow := h.Time().Add(guestNow.Sub(received)) // monotonic: the step itself cannot skew it
	if err := setClock(hostNow); err != nil {
		return nil, fmt.Errorf("set the clock to the host's: %w", err)
	}
	if err := addEntropy(h.Entropy); err != nil {
		return nil, fmt.Errorf("reseed the random pool with the host's entropy: %w", err)
	}
	p := &protocol.Prepared{
		Boot:         h.Boot,
		ClockStepMS:  hostNow.Round(0).Sub(guestNow.Round(0)).Milliseconds(),
		EntropyBytes: len(h.Entropy),
	}
	if h.Boot == protocol.BootSnapshot {
		p.SnapshotAgeMS = (h.TimeUnixNS - h.SnapshotSavedUnixNS) / int64(time.Millisecond)
	}
	n, err := a.receiveFiles(ctx, from, plan)
	if err != nil {
		return nil, err
	}
	p.Files, p.FileBytes = len(plan.Files), n
	return p, nil
}

// receiveFiles makes the plan's directories, then reads its files from
// their file messages, in order, each into a temporary file beside its
// path, and moves each into place once its size and SHA-256 are those the
// plan gave. It returns the bytes received.
func (a *Agent) receiveFiles(ctx context.Context, from <-chan incoming, plan *protocol.Plan) (int64, error) {
	root := a.FilesRoot
	if root == "" {
		root = "/"
	}
	for _, d := range plan.Dirs {
		// The protocol checked the path, as for files.
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			return 0, fmt.Errorf("create %s: %w", d, err)
		}
	}
	var total int64
	for _, f := range plan.Files {
		if err := receiveFile(ctx, from, root, f); err != nil {
			return total, fmt.Errorf("receive %s: %w", f.Path, err)
		}
		total += f.Size
	}
	return total, nil
}

func receiveFile(ctx context.Context, from <-chan incoming, root string, f protocol.FileSpec) (err error) {
	// The protocol checked the path: absolute, under GuestFilesRoot, no "..".
	dst := filepath.Join(root, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".receiving-*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	for off := int64(0); off < f.Size; {
		in, err := receive(ctx, from, PlanTimeout)
		if err != nil {
			return fmt.Errorf("wait for its data at byte %d of %d: %w", off, f.Size, err)
		}
		c := in.msg.File
		switch {
		case in.msg.Type != protocol.TypeFile:
			return fmt.Errorf("got a %s message at byte %d of %d", in.msg.Type, off, f.Size)
		case c.Path != f.Path:
			return fmt.Errorf("got data for %s at byte %d of %d", c.Path, off, f.Size)
		case c.Offset != off:
			return fmt.Errorf("got data at byte %d, want byte %d", c.Offset, off)
		case int64(len(c.Data)) > f.Size-off:
			return fmt.Errorf("got %d bytes past its size of %d", off+int64(len(c.Data))-f.Size, f.Size)
		}
		if _, err := tmp.Write(c.Data); err != nil {
			return err
		}
		h.Write(c.Data)
		off += int64(len(c.Data))
		c.Release()
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("sha256 %s, want %s", got, f.SHA256)
	}
	if err := tmp.Chmod(os.FileMode(f.Mode)); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
