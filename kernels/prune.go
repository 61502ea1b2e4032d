package kernels

import (
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PruneResult says what Prune did.
type PruneResult struct {
	Removed   []fileutil.Removal
	Kept      int   // entries kept
	KeptBytes int64 // their size
}

// Freed is the size of what was removed.
func (r PruneResult) Freed() int64 {
	var n int64
	for _, e := range r.Removed {
		n += e.Size
	}
	return n
}

// Keys lists the cache keys a resolved kernel uses: its kernels/<key>
// directory and the blobs it was made from. Prune keeps them.
func (k *Kernel) Keys() []string {
	keys := []string{k.SHA256}
	for _, f := range k.Origin.Files {
		keys = append(keys, f.SHA256)
	}
	return keys
}

// Prune removes kernels/<key> and blobs/sha256/<sha> whose key is not in
// keep, each under the cache lock that guards it, so that a run using it
// finishes first and a run starting later caches it again. A nil keep
// removes every kernel and blob and the build directories of `build:`
// sources as well. dryRun only reports.
func (c *Cache) Prune(ctx context.Context, keep map[string]bool, dryRun bool) (PruneResult, error) {
	var res PruneResult
	for _, sub := range []string{"kernels", filepath.Join("blobs", "sha256")} {
		entries, err := os.ReadDir(filepath.Join(c.Dir, sub))
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(c.Dir, sub, e.Name())
			size := diskUsage(p)
			if keep != nil && keep[e.Name()] {
				res.Kept++
				res.KeptBytes += size
				continue
			}
			if !dryRun {
				// Temporaries (.tmp-<key>-*) are guarded by their key's lock.
				key := strings.TrimPrefix(e.Name(), ".tmp-")
				if i := strings.LastIndexByte(key, '-'); i > 0 && key != e.Name() {
					key = key[:i]
				}
				unlock, err := c.Lock(ctx, "blob-"+key)
				if err != nil {
					return res, err
				}
				err = os.RemoveAll(p)
				unlock()
				if err != nil {
					return res, fmt.Errorf("prune: %w", err)
				}
			}
			res.Removed = append(res.Removed, fileutil.Removal{Path: filepath.Join(sub, e.Name()), Size: size})
		}
	}
	if keep == nil {
		p := filepath.Join(c.Dir, "build")
		if size := diskUsage(p); size > 0 {
			if !dryRun {
				if err := os.RemoveAll(p); err != nil {
					return res, fmt.Errorf("prune: %w", err)
				}
			}
			res.Removed = append(res.Removed, fileutil.Removal{Path: "build", Size: size})
		}
	}
	return res, nil
}

// diskUsage is the total size of the files under p.
func diskUsage(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
