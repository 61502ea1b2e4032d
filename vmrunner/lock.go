package vmrunner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/vmrunner/vmrunner/kernels"
)

// KernelsHash identifies the kernels of a matrix (names, arches, sources):
// what a lock file was made from.
func (m *Matrix) KernelsHash() string {
	type entry struct {
		Name   string
		Arch   []kernels.Arch
		Source kernels.Spec
	}
	var es []entry
	for _, k := range m.Kernels {
		es = append(es, entry{k.Name, k.Arch, k.Source})
	}
	data, _ := json.Marshal(es)
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// LoadLock reads the lock file next to the matrix (matrix.yaml →
// matrix.lock), or returns nil when there is none. A lock made from other
// kernels than the matrix has is stale: it says so, and its pins are still
// used for the kernels whose source did not change.
func LoadLock(m *Matrix, log *slog.Logger) (*kernels.LockFile, error) {
	if m.Path == "" {
		return nil, nil
	}
	path := kernels.LockPath(m.Path)
	l, err := kernels.ReadLock(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMatrix, err)
	}
	if l.MatrixHash != m.KernelsHash() {
		log.Warn("lock file is stale: the matrix's kernels changed since it was written; run vmrunner lock to update it", "lock", path)
	} else {
		log.Debug("using lock file", "lock", path)
	}
	return l, nil
}

// Lock resolves every kernel × arch of m (downloading what is missing)
// and returns the lock file recording them.
func Lock(ctx context.Context, m *Matrix, cacheDir string, refresh bool, log *slog.Logger) (*kernels.LockFile, error) {
	opts := Options{CacheDir: cacheDir}
	cache, err := openCache(&opts)
	if err != nil {
		return nil, err
	}
	specs := make(map[string]kernels.Spec)
	var ks []*kernels.Kernel
	var errs []error
	for _, t := range m.Targets() {
		specs[t.Kernel.Name] = t.Kernel.Source
		k, err := kernels.Resolve(ctx, t.Kernel.Name, t.Kernel.Source, t.Arch, kernels.Options{Cache: cache, Refresh: refresh, Logger: log})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Label(), err))
			continue
		}
		ks = append(ks, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return kernels.NewLock(m.KernelsHash(), specs, ks), nil
}
