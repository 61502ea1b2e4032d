package kernels

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Cache is a content-addressed directory shared by vmrunner processes.
//
//	blobs/sha256/<hex>      downloaded files, named by their SHA-256
//	kernels/<hex>/          a kernel extracted from blob <hex>, kernel.json last
//	index/<source>/<key>    resolutions of a source (suite...) to a blob
//	locks/<key>.lock        flock files for Cache.Lock
type Cache struct {
	Dir string
}

// DefaultCacheDir returns $VMRUNNER_CACHE if set, else
// os.UserCacheDir()/vmrunner.
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv("VMRUNNER_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir (set VMRUNNER_CACHE): %w", err)
	}
	return filepath.Join(dir, "vmrunner"), nil
}

// OpenCache creates the cache layout under dir if needed; "" means
// DefaultCacheDir.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", dir, err)
	}
	for _, sub := range []string{"blobs/sha256", "kernels", "index", "locks"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
	}
	return &Cache{Dir: abs}, nil
}

// lockRetry is how often Lock polls a lock held by another process.
const lockRetry = 50 * time.Millisecond

// Lock takes an exclusive, inter-process lock named key and holds it until
// unlock is called. It waits as long as ctx allows.
func (c *Cache) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if key == "" {
		return nil, fmt.Errorf("lock cache: empty key")
	}
	path := filepath.Join(c.Dir, "locks", safeName(key)+".lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLockContext(ctx, lockRetry)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: %w", key, ctx.Err())
	}
	return func() { _ = fl.Unlock() }, nil
}

// safeName maps a key to a single path component.
func safeName(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '-', r == '_', r == '.', r == '+':
			return r
		}
		return '_'
	}, key)
}

// blobPath is where the blob with this SHA-256 lives.
func (c *Cache) blobPath(sha string) string {
	return filepath.Join(c.Dir, "blobs", "sha256", sha)
}

// kernelDir is where the kernel extracted from blob sha lives.
func (c *Cache) kernelDir(sha string) string {
	return filepath.Join(c.Dir, "kernels", sha)
}

// tempPrefix names the temporaries that become final. Only the holder of
// the lock guarding final may create them, so whatever carries this prefix
// when the lock is taken was left by a process that died.
func tempPrefix(final string) string {
	return filepath.Join(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-")
}

// removeStaleTemps deletes temporaries of final left by dead processes.
// Call it with the lock guarding final held.
func removeStaleTemps(final string) {
	matches, _ := filepath.Glob(tempPrefix(final) + "*")
	for _, m := range matches {
		_ = os.RemoveAll(m)
	}
}

// writeJSONAtomic writes v to path through a temporary file and a rename.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(tempPrefix(path))+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readJSON decodes path into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// kernelRecord describes the kernel of kernels/<hex>/: the Kernel without
// its Name, paths relative to the directory. The directory is valid once
// renamed into place with its seal (seal.go), written last.
const kernelRecord = "kernel.json"

// loadKernel reads the kernel extracted from blob sha after checking its
// files against their seal (see seal.go). A damaged directory is an error
// wrapping ErrCacheDamaged.
func (c *Cache) loadKernel(sha string) (*Kernel, error) {
	dir := c.kernelDir(sha)
	if err := checkSeal(dir); err != nil {
		return nil, fmt.Errorf("load kernel %s: %w", sha, err)
	}
	k, err := LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load kernel %s: %w: %v", sha, ErrCacheDamaged, err)
	}
	for _, p := range []string{k.Image, k.Uncompressed, k.Config, k.Modules, k.BTF} {
		if rel, err := filepath.Rel(dir, p); p != "" && (err != nil || !filepath.IsLocal(rel)) {
			return nil, fmt.Errorf("load kernel %s: %w: %s names %s, outside its directory", sha, ErrCacheDamaged, kernelRecord, p)
		}
	}
	return k, nil
}

// LoadDir reads the kernel of a cache directory (kernels/<key>/): its
// kernel.json with the paths made absolute. The image must exist.
func LoadDir(dir string) (*Kernel, error) {
	var k Kernel
	if err := readJSON(filepath.Join(dir, kernelRecord), &k); err != nil {
		return nil, err
	}
	for _, p := range []*string{&k.Image, &k.Uncompressed, &k.Config, &k.Modules, &k.BTF} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if _, err := os.Stat(k.Image); err != nil {
		return nil, err
	}
	return &k, nil
}
