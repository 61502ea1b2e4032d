package program

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/kernels"
)

// defaultDirs are where the loader looks last, per arch (Debian's multiarch
// directories first, as its ld.so.conf.d lists them).
var defaultDirs = map[kernels.Arch][]string{
	kernels.X86_64: {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
	kernels.ARM64:  {"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
}

// maxLibraries bounds the closure: a program needing more is not one the
// guest should unpack into its memory.
const maxLibraries = 256

// resolver finds the shared-library closure of one program.
type resolver struct {
	root    string // sysroot, "" for /
	arch    kernels.Arch
	class   elf.Class
	machine elf.Machine
	dirs    []string // from ld.so.conf, then the defaults
	seen    map[string]bool
	files   []File
}

func (r *resolver) add(guest, host string) {
	r.seen[guest] = true
	r.files = append(r.files, File{Guest: guest, Host: host})
}

// host maps a guest path to the host file it resolves to, walking it one
// component at a time so that symlinks (absolute ones too) stay under the
// root, as they would in the guest.
func (r *resolver) host(guest string) (string, error) {
	resolved := "/"
	rest := strings.Split(strings.Trim(path.Clean(guest), "/"), "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(filepath.Join(r.root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", guest)
		}
		target, err := os.Readlink(filepath.Join(r.root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	hp := filepath.Join(r.root, resolved)
	fi, err := os.Stat(hp)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", hp)
	}
	return hp, nil
}

// closure adds every library f needs, breadth first.
func (r *resolver) closure(f *elf.File, origin string) error {
	type item struct {
		f      *elf.File
		origin string
		name   string
	}
	var queue []item
	push := func(f *elf.File, origin string) error {
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("read DT_NEEDED: %w", err)
		}
		for _, n := range needed {
			queue = append(queue, item{f, origin, n})
		}
		return nil
	}
	if err := push(f, origin); err != nil {
		return err
	}
	var opened []*elf.File
	defer func() {
		for _, o := range opened {
			o.Close()
		}
	}()
	found := map[string]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if found[it.name] {
			continue
		}
		guest, hostPath, lib, err := r.find(it.f, it.origin, it.name)
		if err != nil {
			return err
		}
		found[it.name] = true
		opened = append(opened, lib)
		if r.seen[guest] {
			continue
		}
		if len(r.files) >= maxLibraries {
			return fmt.Errorf("more than %d shared libraries", maxLibraries)
		}
		r.add(guest, hostPath)
		if err := push(lib, path.Dir(guest)); err != nil {
			return fmt.Errorf("%s: %w", guest, err)
		}
	}
	return nil
}

// find looks a DT_NEEDED name up as the loader would and opens it.
func (r *resolver) find(from *elf.File, origin, name string) (guest, host string, lib *elf.File, err error) {
	var candidates []string
	if strings.Contains(name, "/") {
		candidates = []string{name}
		if !path.IsAbs(name) {
			candidates = []string{path.Join(origin, name)}
		}
	} else {
		runpath, _ := from.DynString(elf.DT_RUNPATH)
		var dirs []string
		if len(runpath) == 0 {
			rpath, _ := from.DynString(elf.DT_RPATH)
			dirs = append(dirs, splitPaths(rpath, origin)...)
		}
		dirs = append(dirs, splitPaths(runpath, origin)...)
		dirs = append(dirs, r.dirs...)
		for _, d := range dirs {
			candidates = append(candidates, path.Join(d, name))
		}
	}
	for _, c := range candidates {
		hp, err := r.host(c)
		if err != nil {
			continue
		}
		lf, err := elf.Open(hp)
		if err != nil {
			continue
		}
		if lf.Class != r.class || lf.Machine != r.machine {
			lf.Close()
			continue // another arch's copy, as the loader skips it
		}
		return c, hp, lf, nil
	}
	where := "under /"
	if r.root != "" {
		where = "under " + r.root
	}
	return "", "", nil, fmt.Errorf("%w: %s (%s library, looked %s): install it, or build with CGO_ENABLED=0", ErrMissingLibrary, name, r.arch, where)
}

// splitPaths splits a DT_RPATH/DT_RUNPATH list, expanding $ORIGIN.
func splitPaths(lists []string, origin string) []string {
	var out []string
	for _, l := range lists {
		for _, d := range strings.Split(l, ":") {
			if d == "" {
				continue
			}
			d = strings.ReplaceAll(d, "${ORIGIN}", origin)
			d = strings.ReplaceAll(d, "$ORIGIN", origin)
			if path.IsAbs(d) {
				out = append(out, path.Clean(d))
			}
		}
	}
	return out
}

// ldSoConf lists the directories of the loader's configuration, following
// include lines; unreadable files add nothing.
func (r *resolver) ldSoConf(file string) []string {
	if file == "" {
		file = filepath.Join(r.root, "/etc/ld.so.conf")
	}
	var dirs []string
	seen := map[string]bool{}
	var read func(string, int)
	read = func(f string, depth int) {
		if depth > 8 || seen[f] {
			return
		}
		seen[f] = true
		fh, err := os.Open(f)
		if err != nil {
			return
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			if fields[0] == "include" {
				for _, pat := range fields[1:] {
					if !filepath.IsAbs(pat) {
						pat = filepath.Join(filepath.Dir(f), pat)
					} else {
						pat = filepath.Join(r.root, pat)
					}
					matches, _ := filepath.Glob(pat)
					for _, m := range matches {
						read(m, depth+1)
					}
				}
				continue
			}
			for _, d := range fields {
				if path.IsAbs(d) {
					dirs = append(dirs, path.Clean(d))
				}
			}
		}
	}
	read(file, 0)
	return dirs
}
