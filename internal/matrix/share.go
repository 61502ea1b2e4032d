package matrix

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/program"
	"github.com/vmrunner/vmrunner/protocol"
)

// Bounds on what is packed for a program (vmrunner exec, the test check).
const (
	// DefaultMaxDirBytes bounds the directory a program runs in: it is
	// copied into the guest's memory.
	DefaultMaxDirBytes = 64 << 20
	// maxDirFiles bounds its number of files.
	maxDirFiles = 20_000
)

// ErrTooLarge is a directory too large to pack into a guest; it is bad
// input (exit code 2).
var ErrTooLarge = errors.New("too large to pack into the guest")

// Shares are the host files a program needs in the guest (vmrunner exec,
// the test check), staged under protocol.ShareRoot, one directory or file
// per share, and bound by the guest at the paths the program knows them
// by. With snapshots they travel with the plan, over the channel
// (shareFiles), so that the VM is restored from the snapshot every run of
// its kernel and arch shares; without (--no-snapshot), or when they do not
// fit a plan, they are packed into a per-run archive appended to the
// initramfs (never cached: a test binary changes with every build), which
// Linux unpacks by itself before the agent starts. Either works on every
// kernel: Debian's cloud-arm64 kernels have no 9p, virtiofs needs a host
// daemon and shared guest memory, and a block device needs an image built
// and a file system module loaded. A few MB cost tens of milliseconds to
// pack (initramfs.BenchmarkWriteRun).
type Shares struct {
	Files []initramfs.File
	Binds []protocol.Bind
	Bytes int64
	n     int
	// targets are the guest paths bound so far.
	targets map[string]bool
}

// bind stages the next share and binds it at target; it returns where the
// share's files go.
func (s *Shares) bind(target string) (string, error) {
	if err := protocol.CheckGuestPath(target); err != nil {
		return "", err
	}
	if s.targets == nil {
		s.targets = map[string]bool{}
	}
	if s.targets[target] {
		return "", fmt.Errorf("%s is given twice", target)
	}
	s.targets[target] = true
	src := protocol.ShareRoot + "/" + strconv.Itoa(s.n)
	s.n++
	s.Binds = append(s.Binds, protocol.Bind{Source: src, Target: target})
	return src, nil
}

// AddFile packs the regular file host at guest.
func (s *Shares) AddFile(host, guest string, exec bool) error {
	fi, err := os.Stat(host)
	if err != nil {
		return fmt.Errorf("share %s: %w", host, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("share %s: not a regular file or directory", host)
	}
	mode := os.FileMode(0o644)
	if exec || fi.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	src, err := s.bind(guest)
	if err != nil {
		return fmt.Errorf("share %s at %s: %w", host, guest, err)
	}
	s.Files = append(s.Files, initramfs.File{Path: src, Source: host, Mode: mode})
	s.Bytes += fi.Size()
	return nil
}

// AddDir packs the directory host with everything under it at guest, but
// for directories whose name starts with a dot (.git, .cache) and what is
// neither a regular file, a directory nor a symlink. Symlinks to regular
// files are packed as the files they point to; symlinks to directories are
// left out, so that the walk stays in the tree; so are files shared
// already at their place (the program). It refuses a tree of more
// than maxBytes, or maxDirFiles files, naming its largest files.
func (s *Shares) AddDir(host, guest string, maxBytes int64) error {
	root, err := filepath.Abs(host)
	if err != nil {
		return fmt.Errorf("share %s: %w", host, err)
	}
	src, err := s.bind(guest)
	if err != nil {
		return fmt.Errorf("share %s at %s: %w", host, guest, err)
	}
	type sized struct {
		rel  string
		size int64
	}
	var (
		files   []initramfs.File
		total   int64
		count   int
		largest []sized
	)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		guestPath := src
		if rel != "." {
			guestPath = src + "/" + rel
		}
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			files = append(files, initramfs.File{Path: guestPath, Dir: true})
			return nil
		}
		fi, ok := regularFile(p)
		if !ok {
			return nil // a dangling link, a link to a directory, a socket: left out
		}
		if s.targets[path.Join(guest, rel)] {
			return nil // shared already (the program itself): its bind covers it
		}
		count++
		total += fi.Size()
		largest = append(largest, sized{rel, fi.Size()})
		if count > 10*maxDirFiles {
			return fs.SkipAll // enough to say it is too large
		}
		files = append(files, initramfs.File{Path: guestPath, Source: p, Mode: fi.Mode().Perm() | 0o400})
		return nil
	})
	if err != nil {
		return fmt.Errorf("share %s: %w", host, err)
	}
	if total > maxBytes || count > maxDirFiles {
		slices.SortFunc(largest, func(a, b sized) int { return cmp.Compare(b.size, a.size) })
		var top []string
		for _, l := range largest[:min(3, len(largest))] {
			top = append(top, fmt.Sprintf("%s %s", l.rel, mib(l.size)))
		}
		return fmt.Errorf("share %s: %w: %s in %d files, more than %s or %d files (largest: %s): run from a smaller directory, move large files out of it, or raise the limit with --max-dir-size",
			host, ErrTooLarge, mib(total), count, mib(maxBytes), maxDirFiles, strings.Join(top, ", "))
	}
	s.Files = append(s.Files, files...)
	s.Bytes += total
	return nil
}

// AddProgram packs p at its own path and its interpreter and libraries at
// the paths its loader asks for.
func (s *Shares) AddProgram(p *program.Program) error {
	if err := s.AddFile(p.Path, p.Path, true); err != nil {
		return err
	}
	for _, f := range p.Needs {
		if err := s.AddFile(f.Host, f.Guest, true); err != nil {
			return err
		}
	}
	return nil
}

// regularFile stats p, following a symlink, and says whether it is a
// regular file.
func regularFile(p string) (fs.FileInfo, bool) {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	return fi, true
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// ArchCheck is a check's parameters for the targets of one arch, when
// they differ by arch: the test check runs a program built for one.
type ArchCheck struct {
	Params json.RawMessage
	Shares *Shares
}

// GuestDir is the directory the guest sees for host path p: the same.
func GuestDir(p string) string { return path.Clean(filepath.ToSlash(p)) }

// archesOf lists the arches of m, sorted, for messages.
func archesOf(m map[kernels.Arch]ArchCheck) []string {
	var out []string
	for a := range m {
		out = append(out, string(a))
	}
	slices.Sort(out)
	return out
}

// HasShares reports whether a check of m packs files per run.
func (m *Matrix) HasShares() bool {
	for _, c := range m.Checks {
		for _, ac := range c.ByArch {
			if ac.Shares != nil && len(ac.Shares.Files) > 0 {
				return true
			}
		}
	}
	return false
}

// SharedFiles lists the files the checks of m pack per run for arch a.
func (m *Matrix) SharedFiles(a kernels.Arch) []initramfs.File {
	var files []initramfs.File
	for _, c := range m.Checks {
		if ac, ok := c.ByArch[a]; ok && ac.Shares != nil {
			files = append(files, ac.Shares.Files...)
		}
	}
	return files
}
