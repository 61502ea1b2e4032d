package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/snapshot"
)

// A VM whose key (snapshot.Key: QEMU, machine and devices, kernel,
// initramfs, memory, CPUs, accelerator) has a snapshot is restored from it
// instead of booted; one that has none boots, and is saved when its agent
// says ready: stopped, written with QEMU's migration to a file (0.1–0.2 s
// for 60–75 MB here), and let go on with its plan. Everything per run
// travels after the restore, in the plan: the host's clock and entropy
// (protocol.HostState) and the checks' data files (planFile).

// vmSnapshot says how a VM uses the snapshot cache.
type vmSnapshot struct {
	Cache *snapshot.Cache
	Key   snapshot.Key
	// Restore is the snapshot to restore, held; nil boots the VM and
	// saves it at ready.
	Restore *snapshot.Snapshot
}

// snapshotKey is the key of the VM c starts.
func snapshotKey(cache *snapshot.Cache, c qemu.Config) (snapshot.Key, error) {
	bin, err := qemu.LookPath(c.Arch)
	if err != nil {
		return snapshot.Key{}, err
	}
	sum, version, err := cache.Binary(bin)
	if err != nil {
		return snapshot.Key{}, err
	}
	initrd, err := initramfs.Digest(c.Initramfs)
	if err != nil {
		return snapshot.Key{}, fmt.Errorf("snapshot key: %w", err)
	}
	return snapshot.Key{
		Arch: string(c.Arch), QEMU: sum, QEMUVersion: version, Args: c.SnapshotArgs(),
		// The kernel cache keeps each kernel's files sealed under the
		// identity of what it was made from.
		Kernel:    c.Kernel.SHA256 + "/" + filepath.Base(c.Image()),
		Initramfs: initrd, MemoryMiB: c.MemoryMiB, CPUs: c.CPUs, Accel: string(c.Accel),
	}, nil
}

// hostEntropy is how much of the host's randomness a plan carries: the
// CRNG's key size, twice.
const hostEntropy = 64

// hostState is what the host tells a guest before its checks: its clock,
// fresh entropy, and how the VM started.
func hostState(restored *snapshot.Snapshot) *protocol.HostState {
	h := &protocol.HostState{Entropy: make([]byte, hostEntropy), Boot: protocol.BootCold}
	_, _ = rand.Read(h.Entropy) // crypto/rand.Read never fails
	now := time.Now()
	if restored != nil {
		h.Boot = protocol.BootSnapshot
		h.SnapshotSavedUnixNS = min(restored.Saved.UnixNano(), now.UnixNano())
	}
	h.TimeUnixNS = now.UnixNano()
	return h
}

// PlanFile is a host file a plan carries to the guest (a BPF object of the
// verifier check), with what the guest will check it against.
type PlanFile struct {
	Host string
	Spec protocol.FileSpec
	// Data, when set, is the file's content, read already (repro --watch
	// reads each version once, hashes it and sends that).
	Data []byte
}

// OpenPlanFile describes the host file at host for the guest's path guest.
func OpenPlanFile(host, guest string, exec bool) (PlanFile, error) {
	if !protocol.ValidGuestFilePath(guest) {
		return PlanFile{}, fmt.Errorf("file %s: guest path %q is not under %s", host, guest, protocol.GuestFilesRoot)
	}
	fi, err := os.Stat(host)
	if err != nil {
		return PlanFile{}, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > protocol.MaxFileSize {
		return PlanFile{}, fmt.Errorf("%s: not a regular file of at most %d MiB", host, protocol.MaxFileSize>>20)
	}
	sum, err := fileutil.FileSHA256(host)
	if err != nil {
		return PlanFile{}, err
	}
	mode := uint32(protocol.FileMode)
	if exec {
		mode = protocol.FileModeExec
	}
	return PlanFile{Host: host, Spec: protocol.FileSpec{Path: guest, Size: fi.Size(), SHA256: sum, Mode: mode}}, nil
}

// sendPlanFiles sends the files of a plan, in its order, in chunks of
// protocol.FileChunkSize. A file must still have the size it had when it
// was described; the guest checks its SHA-256.
func sendPlanFiles(enc *protocol.Encoder, files []PlanFile) error {
	buf := make([]byte, protocol.FileChunkSize)
	for _, f := range files {
		if err := sendPlanFile(enc, f, buf); err != nil {
			return fmt.Errorf("send %s: %w", f.Host, err)
		}
	}
	return nil
}

func sendPlanFile(enc *protocol.Encoder, f PlanFile, buf []byte) error {
	var r io.Reader = bytes.NewReader(f.Data)
	if f.Data == nil {
		in, err := os.Open(f.Host)
		if err != nil {
			return err
		}
		defer in.Close()
		r = in
	}
	for off := int64(0); off < f.Spec.Size; {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), f.Spec.Size-off)])
		if err != nil {
			return fmt.Errorf("changed since it was read (%d bytes of %d): %w", off+int64(n), f.Spec.Size, err)
		}
		if err := enc.Send(protocol.Message{Type: protocol.TypeFile, File: &protocol.FileChunk{Path: f.Spec.Path, Offset: off, Data: buf[:n]}}); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// saveAtReady saves the VM, whose agent just said ready, as the snapshot
// of snap.Key, unless one exists or another run is saving it: QEMU writes
// the state with the VM stopped, and the VM goes on at once; the state
// file is then synced, hashed and put in place in a goroutine (wg), whose
// result committed delivers. Failing to save is a warning, never the
// VM's failure; failing to let the VM go on is (the error).
func saveAtReady(ctx context.Context, log *slog.Logger, p *qemu.Process, snap *vmSnapshot, ready protocol.Ready, channel string, boot time.Duration, out *Outcome, wg *sync.WaitGroup) (committed chan error, err error) {
	saving, err := snap.Cache.Begin(snap.Key.ID())
	if err != nil || saving == nil {
		if err != nil {
			log.Warn("snapshot not saved", "err", err)
		}
		return nil, nil
	}
	start := time.Now()
	saveErr := p.SaveState(ctx, saving.Temp)
	if err := p.Resume(); err != nil {
		saving.Abort()
		return nil, fmt.Errorf("resume after saving a snapshot: %w", err)
	}
	out.SaveTime = time.Since(start)
	if saveErr != nil {
		saving.Abort()
		log.Warn("snapshot not saved", "err", saveErr)
		return nil, nil
	}
	meta := snapshot.Meta{Key: snap.Key, Ready: ready, Channel: channel, Saved: start, BootMS: boot.Milliseconds(), SaveMS: out.SaveTime.Milliseconds()}
	committed = make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := saving.Commit(meta)
		if err == nil {
			removed, terr := snap.Cache.Trim(snapshotCacheMax())
			for _, r := range removed {
				log.Debug("snapshot removed, least recently used", "snapshot", filepath.Base(r.Path))
			}
			if terr != nil {
				log.Warn("trim the snapshot cache", "err", terr)
			}
		}
		committed <- err
	}()
	return committed, nil
}

// defaultSnapshotCacheMax bounds the snapshot cache: the snapshots used
// least recently go once it holds more (60–75 MB each: the default
// matrix's six take 400 MB).
const defaultSnapshotCacheMax = 2 << 30

// snapshotCacheMax is the snapshot cache's bound: $VMRUNNER_SNAPSHOT_MAX_MB
// MiB when set, else defaultSnapshotCacheMax.
func snapshotCacheMax() int64 {
	if v, err := strconv.ParseInt(os.Getenv("VMRUNNER_SNAPSHOT_MAX_MB"), 10, 64); err == nil && v >= 0 {
		return v << 20
	}
	return defaultSnapshotCacheMax
}

// FindSnapshot looks up the snapshot of the VM s describes. It returns nil
// when the VM cannot use one (its key cannot be made: QEMU is missing, and
// Run says so), a vmSnapshot without Restore to boot and save, or one
// holding the snapshot to restore. A damaged snapshot is deleted, with a
// warning, and the VM boots.
func FindSnapshot(cacheDir string, s Spec, log *slog.Logger) *vmSnapshot {
	cache, err := snapshot.Open(cacheDir)
	if err != nil {
		log.Warn("no snapshot", "err", err)
		return nil
	}
	key, err := snapshotKey(cache, s.qemuConfig(true))
	if err != nil {
		log.Debug("no snapshot", "err", err)
		return nil
	}
	restore, err := cache.Find(key.ID())
	if err != nil {
		log.Warn("snapshot damaged: deleted it, booting instead", "snapshot", key.ID()[:12], "err", err)
	}
	return &vmSnapshot{Cache: cache, Key: key, Restore: restore}
}

// PruneSnapshots removes from the snapshot cache under cacheDir every
// snapshot whose kernel keep does not hold (every snapshot when keep is
// nil) or whose QEMU is not the installed one any more: no run could
// restore it. It also removes what killed runs left there. dryRun only
// reports.
func PruneSnapshots(cacheDir string, keep map[string]bool, dryRun bool) (removed []fileutil.Removal, kept int, keptBytes int64, err error) {
	cache, err := snapshot.Open(cacheDir)
	if err != nil {
		return nil, 0, 0, err
	}
	var want func(snapshot.Meta) bool
	if keep != nil {
		want = func(m snapshot.Meta) bool {
			kernel, _, _ := strings.Cut(m.Key.Kernel, "/")
			if !keep[kernel] {
				return false
			}
			bin, err := qemu.LookPath(kernels.Arch(m.Key.Arch))
			if err != nil {
				return false
			}
			sum, _, err := snapshot.Binary(bin)
			return err == nil && sum == m.Key.QEMU
		}
	}
	return cache.Prune(want, dryRun)
}
