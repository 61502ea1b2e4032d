package qemu

import (
	"bufio"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// QEMU's unix sockets live in a short directory of the system's temporary
// directory, vmr<digits> (os.MkdirTemp("", "vmr"): socket paths are limited
// to 108 bytes), removed when the VM ends. A vmrunner killed with SIGKILL
// leaves it behind; PruneSocketDirs removes those.

// socketDirName is what os.MkdirTemp("", "vmr") names a socket directory.
var socketDirName = regexp.MustCompile(`^vmr[0-9]+$`)

// socketNames are the sockets a VM's directory holds (Config's QMP,
// Control and Console).
var socketNames = map[string]bool{"qmp": true, "ctl": true, "con": true}

// staleSocketDir is how old a socket directory without a bound socket must
// be to be taken for a leftover: a live vmrunner binds its sockets moments
// after making the directory.
const staleSocketDir = 10 * time.Minute

// PruneSocketDirs removes the socket directories killed vmrunner processes
// left in the temporary directory: those named vmr<digits>, owned by this
// user, holding nothing but vmrunner's sockets, none of which a live
// process has bound (/proc/net/unix, this network namespace), and older
// than staleSocketDir. dryRun only reports. Paths are absolute.
func PruneSocketDirs(dryRun bool) ([]fileutil.Removal, error) {
	return pruneSocketDirs(os.TempDir(), time.Now(), dryRun)
}

func pruneSocketDirs(tmp string, now time.Time, dryRun bool) ([]fileutil.Removal, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("prune socket directories: %w", err)
	}
	bound, err := boundSockets()
	if err != nil {
		return nil, fmt.Errorf("prune socket directories: %w", err)
	}
	var removed []fileutil.Removal
	for _, e := range entries {
		if !e.IsDir() || !socketDirName.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if !staleSocketDirAt(dir, now, bound) {
			continue
		}
		if !dryRun {
			if err := os.RemoveAll(dir); err != nil {
				return removed, fmt.Errorf("prune socket directories: %w", err)
			}
		}
		removed = append(removed, fileutil.Removal{Path: dir})
	}
	return removed, nil
}

// staleSocketDirAt reports whether dir is a socket directory nobody uses.
func staleSocketDirAt(dir string, now time.Time, bound map[string]bool) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || now.Sub(fi.ModTime()) < staleSocketDir {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !socketNames[e.Name()] || e.Type()&os.ModeSocket == 0 || bound[p] {
			return false // not vmrunner's, or in use
		}
	}
	return true
}

// boundSockets lists the paths of the unix sockets bound in this network
// namespace.
func boundSockets() (map[string]bool, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	paths := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) >= 8 && strings.HasPrefix(fields[7], "/") {
			paths[fields[7]] = true
		}
	}
	return paths, sc.Err()
}
