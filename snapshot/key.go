package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"os"
	"os/exec"
	"strings"
	"sync"
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
// line. A package upgrade changes both. Results are kept per path, size
// and modification time for the life of the process.
func Binary(path string) (sum, version string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("identify %s: %w", path, err)
	}
	memo := binaryKey{path, fi.Size(), fi.ModTime().UnixNano()}
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

type binaryKey struct {
	path  string
	size  int64
	mtime int64
}

type binaryID struct{ sum, version string }

var binaries = struct {
	sync.Mutex
	m map[binaryKey]binaryID
}{m: map[binaryKey]binaryID{}}
