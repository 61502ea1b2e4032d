package initramfs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/kernels"
)

// Options says what goes into an initramfs.
type Options struct {
	// Kernel supplies Release, the modules directory (may be "") and the
	// config path (may be "").
	Kernel *kernels.Kernel
	// Agent is the path of the static guest agent binary for Kernel.Arch.
	Agent string
	// Modules are the module names wanted; Closure adds their dependencies.
	// Nil means DefaultModules; use an empty non-nil slice for none.
	Modules []string
	// OnDemand are module names packed with their dependencies but not
	// loaded at boot, for a check to load (ModuleIndexPath lists them).
	OnDemand []string
	// CacheDir is where archives are cached.
	CacheDir string
	// Extra are more files for the guest, appended as a second archive
	// after the cached base one (see withExtra).
	Extra []File
}

// lockRetry is how often Build retries a lock held by another builder.
const lockRetry = 50 * time.Millisecond

// Archives may hold the user's files (BPF objects, a Beyla binary): only
// the user reads them.
const (
	archiveMode = 0o600
	dirMode     = 0o700
)

// Bounds of what gather reads from a kernel's files (a module file, still
// compressed, is bounded by maxModuleSize like the module inside).
const maxConfigSize = 16 << 20

// Build returns the path of a cached newc cpio archive (uncompressed) for
// opts, building it if needed. Archives are content-addressed: the same
// inputs always give the same path and the same bytes.
func Build(ctx context.Context, opts Options) (string, error) {
	if len(opts.Extra) > 0 {
		return withExtra(ctx, opts)
	}
	in, err := gather(ctx, opts)
	if err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	dir := filepath.Join(opts.CacheDir, "initramfs")
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil { // made by an older vmrunner
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	archive := filepath.Join(dir, in.key()+".cpio")
	if intact(archive) {
		return archive, nil
	}

	lock := flock.New(archive + ".lock")
	locked, err := lock.TryLockContext(ctx, lockRetry)
	if err != nil {
		return "", fmt.Errorf("build initramfs: lock %s: %w", lock.Path(), err)
	}
	if !locked {
		return "", fmt.Errorf("build initramfs: lock %s: %w", lock.Path(), ctx.Err())
	}
	defer func() { _ = lock.Unlock() }()

	// Someone else may have built it while we waited.
	if intact(archive) {
		return archive, nil
	}
	if err := writeAtomic(archive, in); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	if err := seal(archive); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	return archive, nil
}

// inputs is everything an archive is made of, read once so that what is
// hashed is exactly what is written.
type inputs struct {
	release string
	agent   agentFile
	modules []moduleFile // load order, built-ins excluded
	config  []byte       // nil when unknown
	// onDemand are the OnDemand modules' files not among modules, and
	// index the ModuleIndexPath file listing them.
	onDemand []moduleFile
	index    string
}

type moduleFile struct {
	rel    string // relative to the modules dir, with its compression suffix
	suffix string
	raw    []byte
}

// archivePath is where the decompressed module goes inside the archive.
func (m moduleFile) archivePath(release string) string {
	rel := filepath.ToSlash(m.rel)
	return ModulesRoot(release) + "/" + rel[:len(rel)-len(m.suffix)] + ".ko"
}

func gather(ctx context.Context, opts Options) (*inputs, error) {
	k := opts.Kernel
	switch {
	case k == nil:
		return nil, errors.New("no kernel")
	case k.Release == "":
		return nil, errors.New("kernel has no release")
	case opts.Agent == "":
		return nil, errors.New("no agent binary")
	case opts.CacheDir == "":
		return nil, errors.New("no cache directory")
	}
	in := &inputs{release: k.Release}
	var err error
	if in.agent, err = hashAgent(opts.Agent); err != nil {
		return nil, fmt.Errorf("read agent: %w", err)
	}
	if k.Config != "" {
		if in.config, err = inputfile.ReadFile(ctx, k.Config, maxConfigSize); err != nil {
			return nil, fmt.Errorf("read kernel config: %w", err)
		}
	}
	wanted := opts.Modules
	if wanted == nil {
		wanted = DefaultModules
	}
	mods, err := Closure(k.Modules, wanted)
	if err != nil {
		return nil, err
	}
	packed := map[string]bool{}
	for _, m := range mods {
		if m.Builtin {
			continue
		}
		f, err := readModule(ctx, k.Modules, m)
		if err != nil {
			return nil, err
		}
		in.modules = append(in.modules, f)
		packed[f.rel] = true
	}
	if err := in.gatherOnDemand(ctx, k.Modules, opts.OnDemand, packed); err != nil {
		return nil, err
	}
	return in, nil
}

// readModule reads a module of a closure. Closure has read the file
// already; files this small are cheap to read again, and this copy is the
// one hashed and written.
func readModule(ctx context.Context, dir string, m Module) (moduleFile, error) {
	rel, err := filepath.Rel(dir, m.Path)
	if err != nil {
		return moduleFile{}, fmt.Errorf("module %s: %w", m.Name, err)
	}
	raw, err := inputfile.ReadFile(ctx, m.Path, maxModuleSize)
	if err != nil {
		return moduleFile{}, fmt.Errorf("read module %s: %w", m.Name, err)
	}
	return moduleFile{rel: rel, suffix: moduleSuffix(m.Path), raw: raw}, nil
}

// gatherOnDemand adds the closure of each on-demand module, and the index
// line that says what to load for it, in the order asked.
func (in *inputs) gatherOnDemand(ctx context.Context, dir string, names []string, packed map[string]bool) error {
	var index strings.Builder
	seen := map[string]bool{}
	for _, name := range names {
		name = moduleName(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		mods, err := Closure(dir, []string{name})
		if err != nil {
			return err
		}
		if len(mods) == 0 {
			continue // not in this kernel: the guest says so
		}
		index.WriteString(name)
		for _, m := range mods {
			if m.Builtin {
				continue
			}
			f, err := readModule(ctx, dir, m)
			if err != nil {
				return err
			}
			if !packed[f.rel] {
				packed[f.rel] = true
				in.onDemand = append(in.onDemand, f)
			}
			index.WriteString(" " + f.archivePath(in.release))
		}
		index.WriteString("\n")
	}
	in.index = index.String()
	return nil
}

// key is the hex SHA-256 of all inputs. Every field is length-prefixed so
// that no two different inputs hash the same stream.
func (in *inputs) key() string {
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.LittleEndian, uint64(len(b))) // a hash never fails to write
		h.Write(b)
	}
	field([]byte(LayoutVersion))
	field([]byte(in.release))
	field(in.agent.sum[:])
	if in.config == nil {
		h.Write([]byte{0}) // "no config" differs from an empty one
	} else {
		h.Write([]byte{1})
		field(in.config)
	}
	for _, mods := range [][]moduleFile{in.modules, in.onDemand} {
		_ = binary.Write(h, binary.LittleEndian, uint64(len(mods)))
		for _, m := range mods {
			field([]byte(filepath.ToSlash(m.rel)))
			field(m.raw)
		}
	}
	field([]byte(in.index))
	return hex.EncodeToString(h.Sum(nil))
}

// intact reports whether the archive at path exists and still has the
// content recorded beside it when it was written (see seal). A truncated or
// altered cache entry is rebuilt instead of booting a kernel into "No working
// init found". As in the kernel cache, size and modification time are
// checked first and the content is hashed only when the time is not the
// recorded one (then the seal is rewritten with the new time, so that the
// next check is cheap again): an archive patched with its size and time put
// back is not caught. An archive an older vmrunner left readable by others
// is made the user's alone.
func intact(path string) bool {
	s, err := readSeal(path)
	if err != nil {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != s.size {
		return false
	}
	if s.mtime == 0 || fi.ModTime().UnixNano() != s.mtime {
		got, err := fileutil.FileSHA256(path)
		if err != nil || got != s.sum {
			return false
		}
		_ = writeSeal(path, s.sum) // best effort: the check stays correct without it
	}
	if fi.Mode().Perm() != archiveMode {
		return os.Chmod(path, archiveMode) == nil
	}
	return true
}

// sealed is an archive's seal: "<sha256> <size> <mtime_ns>\n" in
// <archive>.sha256. An mtime of 0 is unknown (a seal of an older vmrunner
// holds the hash alone, or the archive was written too recently to trust
// its time): the next check hashes.
type sealed struct {
	sum   string
	size  int64
	mtime int64
}

func readSeal(path string) (sealed, error) {
	b, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return sealed{}, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f[0]) != 2*sha256.Size {
		return sealed{}, fmt.Errorf("%s.sha256: not a seal", path)
	}
	s := sealed{sum: f[0], size: -1}
	if len(f) == 3 {
		s.size, _ = strconv.ParseInt(f[1], 10, 64)
		s.mtime, _ = strconv.ParseInt(f[2], 10, 64)
	}
	if s.size < 0 { // size unknown: compare the content
		fi, err := os.Stat(path)
		if err != nil {
			return sealed{}, err
		}
		s.size, s.mtime = fi.Size(), 0
	}
	return s, nil
}

// racyWindow is how recent an archive's modification time may be for its
// seal to leave it out: file times advance in steps of a clock tick (a
// few ms), so a file rewritten with the same size within one tick of its
// seal would keep the recorded time. Such a seal says "unknown" and the
// next check hashes, as git does with a racily clean index entry.
const racyWindow = time.Second

// seal records the archive's SHA-256, size and modification time beside
// it, for intact.
func seal(path string) error {
	sum, err := fileutil.FileSHA256(path)
	if err != nil {
		return err
	}
	return writeSeal(path, sum)
}

// writeSeal writes the seal of the archive at path, whose content hashes to
// sum.
func writeSeal(path, sum string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	mtime := fi.ModTime().UnixNano()
	if time.Since(fi.ModTime()) < racyWindow {
		mtime = 0
	}
	// A name of its own: runs checking one archive at once may each
	// rewrite its seal (Prune takes it for the archive's temporary).
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = fmt.Fprintf(tmp, "%s %d %d\n", sum, fi.Size(), mtime)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path+".sha256") // made 0600, as archives are
}

// writeAtomic writes the archive to a temporary file next to path and
// renames it into place.
func writeAtomic(path string, in *inputs) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeArchive(tmp, in); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(archiveMode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// agentFile is the agent binary, known by its hash until an archive must be
// written: with the workload generators linked in it is tens of MB, and every
// VM of a run would otherwise read it again only to find its archive cached.
type agentFile struct {
	path string
	sum  [sha256.Size]byte
}

// read returns the agent's bytes, refusing a file that changed since it was hashed.
func (a agentFile) read() ([]byte, error) {
	b, err := os.ReadFile(a.path)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(b) != a.sum {
		return nil, fmt.Errorf("%s changed while the initramfs was being built", a.path)
	}
	return b, nil
}

// agentHashes remembers agent hashes by path, size, modification and
// change time and inode: a rebuilt agent changes one of them even when
// its size and modification time are put back (the change time cannot be).
var agentHashes sync.Map // agentKey → [sha256.Size]byte

type agentKey struct {
	path         string
	ino, size    int64
	mtime, ctime unix.Timespec
}

func hashAgent(path string) (agentFile, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return agentFile{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	k := agentKey{path, int64(st.Ino), st.Size, st.Mtim, st.Ctim}
	if sum, ok := agentHashes.Load(k); ok {
		return agentFile{path: path, sum: sum.([sha256.Size]byte)}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return agentFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return agentFile{}, err
	}
	a := agentFile{path: path}
	copy(a.sum[:], h.Sum(nil))
	agentHashes.Store(k, a.sum)
	return a, nil
}

// Digest returns the SHA-256 of an archive Build returned, from the seal
// Build checked (the archive's .sha256), or by reading the archive when it
// has none (a per-run archive).
func Digest(path string) (string, error) {
	if s, err := readSeal(path); err == nil {
		return s.sum, nil
	}
	return fileutil.FileSHA256(path)
}
