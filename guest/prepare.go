package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

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
		if err := receiveFile(ctx, from, root, f, a.sink); err != nil {
			return total, fmt.Errorf("receive %s: %w", f.Path, err)
		}
		total += f.Size
	}
	return total, nil
}

// receiveFile receives f into a temporary file. The file is mapped into
// memory and handed to sink, when there is one, so that the reader puts
// the data there as it reads it from the channel: one copy of each byte
// instead of two (reading it, then writing the file), which is a tenth
// to a fifth of the guest's time per byte under emulation. Chunks read
// before the file was mapped, or that sink refused, are copied in.
func receiveFile(ctx context.Context, from <-chan incoming, root string, f protocol.FileSpec, sink *fileSink) (err error) {
	// The protocol checked the path: absolute, under GuestFilesRoot, no "..".
	dst := filepath.Join(root, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".receiving-*")
	if err != nil {
		return err
	}
	var (
		mem    []byte
		placed int // chunks that arrived in mem
	)
	defer func() {
		if mem != nil {
			// Unmapped only when every chunk the reader was given a
			// place for has arrived: nothing writes into it any more.
			// Otherwise it stays mapped (the agent stops).
			if gave := sink.set("", nil); gave == placed {
				_ = unix.Munmap(mem)
			} else if err == nil {
				err = fmt.Errorf("got %d more chunks of it", gave-placed)
			}
		}
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if sink != nil && f.Size > 0 {
		// Allocated, not only sized: a file the guest's memory cannot
		// hold fails here, in words, not later as a fault on the mapping
		// ("bad address").
		if err := unix.Fallocate(int(tmp.Fd()), 0, 0, f.Size); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("no space for its %d bytes in the guest's memory (its root file system is a tmpfs of half the VM's memory): give the VM more memory, or send fewer or smaller files", f.Size)
			}
			if err := tmp.Truncate(f.Size); err != nil {
				return err
			}
		}
		mem, err = unix.Mmap(int(tmp.Fd()), 0, int(f.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			mem = nil // written as it comes, then
		} else {
			sink.set(f.Path, mem)
		}
	}
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
		data := c.Data
		if mem != nil {
			data = mem[off : off+int64(len(c.Data))]
			if &data[0] == &c.Data[0] {
				placed++
			} else {
				copy(data, c.Data)
			}
		} else if _, err := tmp.Write(data); err != nil {
			return err
		}
		h.Write(data)
		off += int64(len(data))
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

// fileSink is where the channel's reader puts the data of the file being
// received (protocol.Decoder.FileData): the file's memory, each byte at
// most once, in order, never past its end.
type fileSink struct {
	mu   sync.Mutex
	path string
	mem  []byte
	next int64 // the first byte not given out yet
	gave int   // places given out in mem
}

// set makes mem the memory of the file at path (nil: none) and returns
// how many places the reader was given in the memory before.
func (s *fileSink) set(path string, mem []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	gave := s.gave
	s.path, s.mem, s.next, s.gave = path, mem, 0, 0
	return gave
}

// place implements protocol.Decoder.FileData: the place of c's data in
// the file's memory, or nil when it has none there.
func (s *fileSink) place(c *protocol.FileChunk) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := c.Offset + int64(c.Size)
	if s.mem == nil || c.Path != s.path || c.Offset < s.next || end > int64(len(s.mem)) {
		return nil
	}
	s.next = end
	s.gave++
	return s.mem[c.Offset:end]
}
