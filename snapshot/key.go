package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/internal/atomicfile"
	"github.com/vmrunner/vmrunner/internal/fileutil"
)

// formatVersion names the layout of the cache and of Key; it is part of
// every ID.
const formatVersion = 1

// Key is everything a saved VM state depends on. Two VMs whose keys are
// equal may restore each other's snapshots; any difference means a boot.
type Key struct {
	Arch        string `json:"arch"`
	QEMU        string `json:"qemu"`         // SHA-256 of the qemu-system binary
	QEMUVersion string `json:"qemu_version"` // its -version line, for people
	// Args are QEMU's arguments with what differs per run (socket paths)
	// and what is named here already (kernel, initramfs) replaced by
	// placeholders; the caller normalises them.
	Args      []string `json:"args"`
	Kernel    string   `json:"kernel"`    // SHA-256 of the kernel image booted
	Initramfs string   `json:"initramfs"` // SHA-256 of the initramfs
	MemoryMiB int      `json:"memory_mib"`
	CPUs      int      `json:"cpus"`
	Accel     string   `json:"accel"`
}

// ID is the hash of the key: the snapshot's name in the cache.
func (k Key) ID() string {
	b, err := json.Marshal(struct {
		Format int `json:"format"`
		Key
	}{formatVersion, k})
	if err != nil {
		panic(err) // a struct of strings and ints always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Binary identifies a QEMU binary: its content's SHA-256 and its version
// line. A package upgrade changes both. Results are kept for the life of
// the process per path and file identity (inode, size,
// modification and change times).
func Binary(path string) (sum, version string, err error) {
	memo, err := identity(path)
	if err != nil {
		return "", "", fmt.Errorf("identify %s: %w", path, err)
	}
	binaries.Lock()
	id, ok := binaries.m[memo]
	binaries.Unlock()
	if ok {
		return id.sum, id.version, nil
	}
	if id.sum, err = fileutil.FileSHA256(path); err != nil {
		return "", "", fmt.Errorf("identify %s: %w", path, err)
	}
	out, err := exec.Command(path, "-version").Output()
	if err != nil {
		return "", "", fmt.Errorf("identify %s: %s -version: %w", path, path, err)
	}
	id.version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	binaries.Lock()
	binaries.m[memo] = id
	binaries.Unlock()
	return id.sum, id.version, nil
}

// binaryKey is a file's identity on disk: rewriting or replacing it
// changes the change time or the inode, which cannot be put back.
type binaryKey struct {
	Path    string `json:"path"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MTimeNS int64  `json:"mtime_ns"`
	CTimeNS int64  `json:"ctime_ns"`
}

func identity(path string) (binaryKey, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return binaryKey{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return binaryKey{Path: path, Ino: st.Ino, Size: st.Size, MTimeNS: st.Mtim.Nano(), CTimeNS: st.Ctim.Nano()}, nil
}

type binaryID struct{ sum, version string }

var binaries = struct {
	sync.Mutex
	m map[binaryKey]binaryID
}{m: map[binaryKey]binaryID{}}

// binaryRecord is what Cache.Binary keeps of a QEMU binary: its identity
// on disk and what Binary said of it.
type binaryRecord struct {
	binaryKey
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
}

// Binary is Binary kept across processes: the binary's SHA-256 and version
// line are recorded in the cache (qemu-<hash of path>.id) with its
// inode, size, modification and change times, and reused while all of
// them are the same. Reading 18–23 MB and starting QEMU for its -version
// (0.4–2 s under load) is then once per installed QEMU, not once per run.
// A package upgrade or a rebuild changes the inode or the change time,
// which no one can set back.
func (c *Cache) Binary(path string) (sum, version string, err error) {
	id, err := identity(path)
	if err != nil {
		return "", "", fmt.Errorf("identify %s: %w", path, err)
	}
	h := sha256.Sum256([]byte(path))
	file := filepath.Join(c.Dir, "qemu-"+hex.EncodeToString(h[:8])+".id")
	var rec binaryRecord
	if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &rec) == nil && rec.SHA256 != "" && rec.binaryKey == id {
		return rec.SHA256, rec.Version, nil
	}
	rec = binaryRecord{binaryKey: id}
	if rec.SHA256, rec.Version, err = Binary(path); err != nil {
		return "", "", err
	}
	if b, err := json.Marshal(rec); err == nil {
		_ = atomicfile.WriteFile(file, b, atomicfile.Options{Mode: fileMode}) // best effort: the next run identifies it again
	}
	return rec.SHA256, rec.Version, nil
}
