package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/vmrunner/vmrunner/internal/atomicfile"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// Files of the cache, in Dir: <id>.state (QEMU's migration stream),
// <id>.json (Meta), <id>.lock (empty, never removed), and <id>.state.*.tmp
// while one is written.
const (
	stateExt = ".state"
	metaExt  = ".json"
	lockExt  = ".lock"
	tmpExt   = ".tmp"
	fileMode = 0o600
	dirMode  = 0o700
	// maxMeta bounds what Find reads of a metadata file.
	maxMeta = 1 << 20
)

// ErrDamaged is a snapshot whose state file is not what its metadata
// recorded; Find has deleted it. Errors that wrap it say how.
var ErrDamaged = errors.New("snapshot damaged")

// Meta is what the cache records beside a state file.
type Meta struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	Key    Key    `json:"key"`
	// Ready is what the agent said before the VM was saved: a restored VM
	// does not say it again.
	Ready protocol.Ready `json:"ready"`
	// Channel is the one the agent spoke on (protocol.ChannelVirtio or
	// protocol.ChannelConsole): it waits for its plan there.
	Channel string    `json:"channel"`
	Saved   time.Time `json:"saved"`
	// BootMS is how long the boot took that a restore saves (QEMU start to
	// ready); SaveMS how long the VM stood still while it was saved.
	BootMS int64 `json:"boot_ms"`
	SaveMS int64 `json:"save_ms"`
	// The state file as it was written.
	Size    int64  `json:"size"`
	MTimeNS int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// Cache is a directory of snapshots.
type Cache struct {
	Dir string
}

// Open opens (creating it) the snapshot cache under cacheDir: its
// "snapshots" directory, mode 0700.
func Open(cacheDir string) (*Cache, error) {
	dir := filepath.Join(cacheDir, "snapshots")
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("open snapshot cache: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return nil, fmt.Errorf("open snapshot cache: %w", err)
	}
	return &Cache{Dir: dir}, nil
}

func (c *Cache) path(id, ext string) string { return filepath.Join(c.Dir, id+ext) }

// validID accepts what Key.ID makes (a SHA-256 in hex), so that an ID is
// a file name.
func validID(id string) bool { return text.IsSHA256Hex(id) }

// Snapshot is a state file found in the cache, held (shared lock) until
// Release so that nothing deletes it while QEMU reads it.
type Snapshot struct {
	Meta
	State string // the state file
	lock  *flock.Flock
}

// Release lets the snapshot be removed again; call it once QEMU has read
// the state.
func (s *Snapshot) Release() {
	if s != nil && s.lock != nil {
		_ = s.lock.Unlock()
		s.lock = nil
	}
}

// Verify hashes the state file and compares it with the SHA-256 recorded
// when it was written: Find's checks (size, modification time) do not see
// a byte changed with its time put back. A mismatch wraps ErrDamaged. It
// is meant to run while QEMU loads the state (the file is in the page cache
// either way): a restored VM runs only once it returned nil.
func (s *Snapshot) Verify() error {
	sum, err := fileutil.FileSHA256(s.State)
	if err != nil {
		return fmt.Errorf("verify snapshot: %w", err)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("%w: %s is not what was written (SHA-256 %.12s, was %.12s)", ErrDamaged, s.State, sum, s.SHA256)
	}
	return nil
}

// Find returns the snapshot of id, held, or nil when there is none, or
// when it is being written or removed at this moment. A snapshot whose
// state file does not match its metadata is deleted and reported with
// ErrDamaged; the caller boots instead.
func (c *Cache) Find(id string) (*Snapshot, error) {
	if !validID(id) {
		return nil, fmt.Errorf("find snapshot: invalid id %q", id)
	}
	if _, err := os.Stat(c.path(id, metaExt)); errors.Is(err, os.ErrNotExist) {
		return nil, nil // the common miss, without a lock file
	}
	lock := flock.New(c.path(id, lockExt))
	ok, err := lock.TryRLock()
	if err != nil {
		return nil, fmt.Errorf("find snapshot: %w", err)
	}
	if !ok {
		return nil, nil // being saved or removed
	}
	meta, err := c.check(id)
	if err == nil {
		// The record's time is when the snapshot was last used (Trim).
		now := time.Now()
		_ = os.Chtimes(c.path(id, metaExt), now, now)
		return &Snapshot{Meta: *meta, State: c.path(id, stateExt), lock: lock}, nil
	}
	_ = lock.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if rmErr := c.Remove(id); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return nil, err
}

// check reads id's metadata and checks its state file against it.
func (c *Cache) check(id string) (*Meta, error) {
	meta, err := c.readMeta(id)
	if err != nil {
		return nil, err
	}
	state := c.path(id, stateExt)
	fi, err := os.Lstat(state)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: %s: the state file is missing", ErrDamaged, id)
	case err != nil:
		return nil, fmt.Errorf("find snapshot: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s: the state file is not a regular file", ErrDamaged, state)
	case fi.Size() != meta.Size:
		return nil, fmt.Errorf("%w: %s has %d bytes, %d were written", ErrDamaged, state, fi.Size(), meta.Size)
	case fi.ModTime().UnixNano() != meta.MTimeNS:
		// Touched since it was written: only its content can tell.
		sum, err := fileutil.FileSHA256(state)
		if err != nil {
			return nil, fmt.Errorf("find snapshot: %w", err)
		}
		if sum != meta.SHA256 {
			return nil, fmt.Errorf("%w: %s changed since it was written (SHA-256 %.12s, was %.12s)", ErrDamaged, state, sum, meta.SHA256)
		}
	}
	if fi.Mode().Perm() != fileMode {
		_ = os.Chmod(state, fileMode)
	}
	return meta, nil
}

func (c *Cache) readMeta(id string) (*Meta, error) {
	f, err := os.Open(c.path(id, metaExt))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMeta+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot metadata: %w", err)
	}
	var m Meta
	if len(b) > maxMeta || json.Unmarshal(b, &m) != nil || m.Format != formatVersion || m.ID != id || m.Key.ID() != id {
		return nil, fmt.Errorf("%w: %s: its metadata does not read", ErrDamaged, id)
	}
	return &m, nil
}

// Remove deletes the snapshot of id, unless a restore holds it right now.
func (c *Cache) Remove(id string) error {
	if !validID(id) {
		return fmt.Errorf("remove snapshot: invalid id %q", id)
	}
	lock := flock.New(c.path(id, lockExt))
	ok, err := lock.TryLock()
	if err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if !ok {
		return nil // in use: a later run finds it damaged again
	}
	defer func() { _ = lock.Unlock() }()
	return c.removeLocked(id)
}

// removeLocked deletes id's files; the caller holds its lock.
func (c *Cache) removeLocked(id string) error {
	// The metadata first: without it the state file is never used.
	for _, ext := range []string{metaExt, stateExt} {
		if err := os.Remove(c.path(id, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove snapshot: %w", err)
		}
	}
	return nil
}

// Saving is a snapshot being written: its temporary state file is Temp.
type Saving struct {
	c    *Cache
	id   string
	Temp string
	lock *flock.Flock
}

// Begin starts saving the snapshot of id, or returns nil when there is no
// need: a valid snapshot of id exists, or another run is saving it now
// (the lock is not waited for). Temp exists, empty, with mode 0600: the
// writer truncates it, keeping the mode.
func (c *Cache) Begin(id string) (*Saving, error) {
	if !validID(id) {
		return nil, fmt.Errorf("save snapshot: invalid id %q", id)
	}
	lock := flock.New(c.path(id, lockExt))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("save snapshot: %w", err)
	}
	if !ok {
		return nil, nil
	}
	if _, err := c.check(id); err == nil {
		_ = lock.Unlock()
		return nil, nil
	}
	f, err := os.CreateTemp(c.Dir, id+stateExt+".*"+tmpExt)
	if err == nil {
		err = f.Chmod(fileMode)
		f.Close()
	}
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("save snapshot: %w", err)
	}
	return &Saving{c: c, id: id, Temp: f.Name(), lock: lock}, nil
}

// Commit makes the written temporary file the snapshot of meta.Key,
// synced to disk, and records meta (completed with the file's size, time
// and hash) beside it.
func (s *Saving) Commit(meta Meta) (err error) {
	defer s.Abort()
	if meta.Key.ID() != s.id {
		return fmt.Errorf("save snapshot: key does not match %s", s.id)
	}
	f, err := os.Open(s.Temp)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("save snapshot: sync: %w", err)
	}
	fi, err := os.Stat(s.Temp)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if fi.Size() == 0 {
		return errors.New("save snapshot: QEMU wrote nothing")
	}
	sum, err := fileutil.FileSHA256(s.Temp)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	meta.Format, meta.ID = formatVersion, s.id
	meta.Size, meta.MTimeNS, meta.SHA256 = fi.Size(), fi.ModTime().UnixNano(), sum
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := os.Rename(s.Temp, s.c.path(s.id, stateExt)); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := atomicfile.WriteFile(s.c.path(s.id, metaExt), b, metaOptions); err != nil {
		_ = os.Remove(s.c.path(s.id, stateExt))
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// Abort removes the temporary file and lets go of the lock; after Commit
// it does nothing.
func (s *Saving) Abort() {
	if s == nil || s.lock == nil {
		return
	}
	_ = os.Remove(s.Temp)
	_ = s.lock.Unlock()
	s.lock = nil
}

// metaOptions write a snapshot's record: private, durable, and under a
// temporary name "<id>.json.<random>.tmp" that Prune, matching
// "<id>.*.tmp", removes when a killed writer left it.
var metaOptions = atomicfile.Options{Mode: fileMode, Sync: true, TempSuffix: tmpExt}

// Prune removes the snapshots keep does not want (every one when keep is
// nil), and what a killed vmrunner left: temporaries and state files
// without metadata whose lock is free. A snapshot being restored is left.
// dryRun only reports. Removal paths are relative to the cache directory
// above Dir ("snapshots/<id>").
func (c *Cache) Prune(keep func(Meta) bool, dryRun bool) (removed []fileutil.Removal, kept int, keptBytes int64, err error) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("prune snapshots: %w", err)
	}
	ids := map[string]bool{}
	for _, e := range entries {
		id, _, _ := strings.Cut(e.Name(), ".")
		if validID(id) {
			ids[id] = true
		}
	}
	for id := range ids {
		size := c.size(id)
		meta, merr := c.readMeta(id)
		if merr == nil && keep != nil && keep(*meta) {
			temps := c.tempSize(id)
			if temps > 0 && (dryRun || c.withLock(id, func() error { return c.removeTemps(id) }) == nil) {
				removed = append(removed, fileutil.Removal{Path: filepath.Join("snapshots", id+stateExt+".*"+tmpExt), Size: temps})
				size -= temps
			}
			kept++
			keptBytes += size
			continue
		}
		if size == 0 {
			continue // a lock file alone: never removed (see below)
		}
		if !dryRun {
			// The lock file stays: removing it could let two processes
			// lock two different files of one name.
			err := c.withLock(id, func() error {
				if err := c.removeLocked(id); err != nil {
					return err
				}
				return c.removeTemps(id)
			})
			if errors.Is(err, errBusy) {
				continue // being saved or restored: next time
			}
			if err != nil {
				return removed, kept, keptBytes, fmt.Errorf("prune snapshots: %w", err)
			}
		}
		removed = append(removed, fileutil.Removal{Path: filepath.Join("snapshots", id), Size: size})
	}
	return removed, kept, keptBytes, nil
}

// Trim removes the snapshots used least recently (by their record's time,
// which Find and Commit set) until the cache holds at most max bytes. A
// snapshot in use is skipped. It returns what it removed.
func (c *Cache) Trim(max int64) ([]fileutil.Removal, error) {
	files, err := filepath.Glob(filepath.Join(c.Dir, "*"+metaExt))
	if err != nil {
		return nil, fmt.Errorf("trim snapshots: %w", err)
	}
	type entry struct {
		id   string
		used time.Time
		size int64
	}
	var (
		entries []entry
		total   int64
	)
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), metaExt)
		fi, err := os.Stat(f)
		if !validID(id) || err != nil {
			continue
		}
		e := entry{id, fi.ModTime(), c.size(id)}
		entries = append(entries, e)
		total += e.size
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.used.Compare(b.used) })
	var removed []fileutil.Removal
	for _, e := range entries {
		if total <= max {
			break
		}
		err := c.withLock(e.id, func() error { return c.removeLocked(e.id) })
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("trim snapshots: %w", err)
		}
		total -= e.size
		removed = append(removed, fileutil.Removal{Path: filepath.Join("snapshots", e.id), Size: e.size})
	}
	return removed, nil
}

// size is the disk space id's files take.
func (c *Cache) size(id string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(c.Dir, id+".*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// tempSize is the size of id's temporaries.
func (c *Cache) tempSize(id string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(c.Dir, id+".*"+tmpExt))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// withLock runs f under id's lock, if it is free (errBusy otherwise).
func (c *Cache) withLock(id string, f func() error) error {
	lock := flock.New(c.path(id, lockExt))
	ok, err := lock.TryLock()
	if err != nil {
		return err
	}
	if !ok {
		return errBusy
	}
	defer func() { _ = lock.Unlock() }()
	return f()
}

var errBusy = errors.New("snapshot in use")

func (c *Cache) removeTemps(id string) error {
	matches, _ := filepath.Glob(filepath.Join(c.Dir, id+".*"+tmpExt))
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prune snapshots: %w", err)
		}
	}
	return nil
}
