package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
)

// The lock file, matrix.lock, is all here: its format, reading and
// writing it, making one from a matrix's kernels, and resolving a kernel to
// what it pinned (resolvePinned, through Options.Pin).

// LockFile is matrix.lock: what every kernel × arch of a matrix resolved
// to, so that a later run boots exactly the same kernels even after a
// Debian suite or an image tag moved on.
type LockFile struct {
	Version int `json:"version"`
	// MatrixHash identifies the kernels of the matrix (names, arches,
	// sources) the lock was made from; a different hash means the lock is
	// stale.
	MatrixHash string         `json:"matrix_hash"`
	Kernels    []LockedKernel `json:"kernels"`
}

// LockVersion is the format of LockFile this vmrunner writes and reads.
const LockVersion = 1

// LockedKernel is one kernel × arch of a lock.
type LockedKernel struct {
	Name string `json:"name"`
	Arch Arch   `json:"arch"`
	// SourceHash is SpecHash of the source the pin was resolved from: a
	// pin is only used for the same source.
	SourceHash string `json:"source_hash"`
	Release    string `json:"release"`
	// Pin is the kernel's Origin: the .deb URLs and SHA-256s, the OCI
	// digest, the local files' SHA-256s.
	Pin Origin `json:"pin"`
}

// SpecHash identifies a source.
func SpecHash(s Spec) string {
	data, _ := json.Marshal(s)
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// LockPath is the lock file of the matrix file at path: matrix.yaml →
// matrix.lock, next to it.
func LockPath(matrixPath string) string {
	ext := filepath.Ext(matrixPath)
	return strings.TrimSuffix(matrixPath, ext) + ".lock"
}

// MatrixKernel is one kernel of a matrix as a lock sees it.
type MatrixKernel struct {
	Name   string
	Arch   []Arch
	Source Spec
}

// MatrixHash identifies the kernels of a matrix (names, arches, sources):
// what a lock file was made from.
func MatrixHash(ks []MatrixKernel) string {
	data, _ := json.Marshal(ks)
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// LoadLock reads the lock file of the matrix file at matrixPath (matrix.yaml
// → matrix.lock), or returns nil when there is none. A lock made from other
// kernels than ks is stale: it says so, and its pins are still used for the
// kernels whose source did not change. A lock that does not read is an error
// wrapping ErrBadInput.
func LoadLock(matrixPath string, ks []MatrixKernel, log *slog.Logger) (*LockFile, error) {
	if matrixPath == "" {
		return nil, nil
	}
	path := LockPath(matrixPath)
	l, err := ReadLock(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if l.MatrixHash != MatrixHash(ks) {
		log.Warn("lock file is stale: the matrix's kernels changed since it was written; run vmrunner lock to update it", "lock", path)
	} else {
		log.Debug("using lock file", "lock", path)
	}
	return l, nil
}

// Lock resolves every kernel × arch of ks (downloading what is missing) and
// returns the lock file recording them.
func Lock(ctx context.Context, ks []MatrixKernel, opts Options) (*LockFile, error) {
	specs := make(map[string]Spec)
	var resolved []*Kernel
	var errs []error
	for _, mk := range ks {
		specs[mk.Name] = mk.Source
		for _, a := range mk.Arch {
			k, err := Resolve(ctx, mk.Name, mk.Source, a, opts)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", mk.Name, a, err))
				continue
			}
			resolved = append(resolved, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewLock(MatrixHash(ks), specs, resolved), nil
}

// NewLock records kernels resolved from a matrix whose kernels hash to
// matrixHash. specs gives the source of each kernel name.
func NewLock(matrixHash string, specs map[string]Spec, ks []*Kernel) *LockFile {
	l := &LockFile{Version: LockVersion, MatrixHash: matrixHash}
	for _, k := range ks {
		pin := k.Origin
		if pin.Type == "debian" && len(pin.Files) == 0 {
			pin.Files = []File{{URL: pin.URL, SHA256: k.SHA256}}
		}
		l.Kernels = append(l.Kernels, LockedKernel{Name: k.Name, Arch: k.Arch, SourceHash: SpecHash(specs[k.Name]),
			Release: k.Release, Pin: pin})
	}
	slices.SortStableFunc(l.Kernels, func(a, b LockedKernel) int {
		return strings.Compare(a.Name+"\x00"+string(a.Arch), b.Name+"\x00"+string(b.Arch))
	})
	return l
}

// ReadLock reads a lock file. A missing file is an error wrapping
// os.ErrNotExist.
func ReadLock(path string) (*LockFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read lock: %w: %v", ErrBadInput, err)
	}
	var l LockFile
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("read lock %s: %w: %v (delete it or run vmrunner lock again)", path, ErrBadInput, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("read lock %s: %w: version %d, this vmrunner reads %d (run vmrunner lock again)", path, ErrBadInput, l.Version, LockVersion)
	}
	return &l, nil
}

// Write writes the lock atomically.
func (l *LockFile) Write(path string) error {
	return writeJSONAtomic(path, l)
}

// Pin returns what the lock recorded for the kernel name on arch resolved
// from spec, or nil when it has nothing for it or the source changed.
func (l *LockFile) Pin(name string, arch Arch, spec Spec) *Origin {
	if l == nil {
		return nil
	}
	for _, k := range l.Kernels {
		if k.Name == name && k.Arch == arch && k.SourceHash == SpecHash(spec) {
			pin := k.Pin
			return &pin
		}
	}
	return nil
}

// resolvePinned resolves spec to exactly what pin says. Downloads are
// verified against the pinned SHA-256 whatever the mirror or registry
// serves now. Local sources (files, builds) cannot be pinned: they resolve
// as usual and a changed input is logged.
func resolvePinned(ctx context.Context, spec Spec, pin Origin, arch Arch, opts Options) (*Kernel, error) {
	if pin.Type != spec.Kind() {
		return nil, fmt.Errorf("%w: lock pins a %s kernel but the source is %s; run vmrunner lock again", ErrBadInput, pin.Type, spec.Kind())
	}
	switch pin.Type {
	case "debian", "ubuntu", "deb", "ubuntu-mainline":
		var items []debItem
		local := false
		for _, f := range pin.Files {
			if f.URL == "" {
				local = true
				break
			}
			if !text.IsSHA256Hex(f.SHA256) {
				return nil, fmt.Errorf("%w: lock: bad sha256 %q for %s", ErrBadInput, f.SHA256, f.URL)
			}
			items = append(items, debItem{url: f.URL, sha: f.SHA256})
		}
		if local || len(items) == 0 {
			break
		}
		kind := pin.Type
		if kind == "debian" || kind == "ubuntu" {
			kind = "deb" // the same kernels/<deb sha>/ as resolveArchive
		}
		origin := pin
		origin.Files = nil // resolveDebItems lists them again
		k, err := resolveDebItems(ctx, kind, items, arch, opts, origin)
		if err == nil && (pin.Type == "debian" || pin.Type == "ubuntu") && pin.Package != "" && k.Release != packageRelease(pin.Package) {
			return nil, fmt.Errorf("%w: the lock pins %s but its .deb holds kernel %s; run vmrunner lock again", ErrChecksum, pin.Package, k.Release)
		}
		return k, err
	case "rpm":
		if spec.RPM == nil {
			break
		}
		return resolveRPMPinned(ctx, *spec.RPM, pin, arch, opts)
	case "oci":
		if pin.URL == "" || !strings.Contains(pin.URL, "@sha256:") {
			return nil, fmt.Errorf("%w: lock: oci pin %q has no digest; run vmrunner lock again", ErrBadInput, pin.URL)
		}
		return resolveOCI(ctx, pin.URL, arch, opts)
	}
	opts.Pin = nil
	k, err := Resolve(ctx, "", spec, arch, opts)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(k.Origin.Files, pin.Files) {
		opts.Logger.Warn("local kernel changed since vmrunner lock", "source", pin.Type)
	}
	return k, nil
}
