package program

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/kernels"
)

// Errors of Inspect; match them with errors.Is.
var (
	ErrNotELF         = errors.New("not an ELF executable")
	ErrArchMismatch   = errors.New("program built for another arch")
	ErrForeignDynamic = errors.New("dynamically linked for another arch")
	ErrMissingLibrary = errors.New("shared library not found")
)

// Program is an executable ready to be packed for a guest.
type Program struct {
	// Path is the program's absolute host path; the guest runs it at the
	// same path.
	Path string
	// Arch is the guest architecture the program is built for.
	Arch kernels.Arch
	// Static is true when the program has no interpreter.
	Static bool
	// Interp is the dynamic loader the program names (PT_INTERP).
	Interp string
	// Needs are the interpreter and the shared libraries, in the order
	// found: guest path and host file.
	Needs []File
}

// File is a host file and where the guest sees it.
type File struct {
	Guest string // absolute path in the guest
	Host  string // the file on the host, symlinks resolved
}

// Options configure Inspect.
type Options struct {
	// Arch, when set, is the arch the program must be built for.
	Arch kernels.Arch
	// Sysroot is a directory holding the target's root file system
	// (lib/, usr/lib/): the interpreter and libraries are looked up under
	// it instead of under / . Needed for dynamic programs of another arch.
	Sysroot string
	// Host is the arch whose libraries / holds; default kernels.Host().
	Host kernels.Arch
	// LdSoConf is the loader's configuration file read for more library
	// directories; default /etc/ld.so.conf under the root in use.
	LdSoConf string
}

// machines maps ELF machines to guest arches.
var machines = map[elf.Machine]kernels.Arch{
	elf.EM_X86_64:  kernels.X86_64,
	elf.EM_AARCH64: kernels.ARM64,
}

// Inspect reads the program at path and lists what it needs in a guest.
func Inspect(path string, opts Options) (*Program, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("program %s: no such file", path)
		}
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("program %s: %w (%s is not a regular file)", path, ErrNotELF, fi.Mode().Type())
	}
	f, err := elf.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w: %s", path, ErrNotELF, notELFHint(abs))
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("program %s: %w (ELF type %s)", path, ErrNotELF, f.Type)
	}
	arch, ok := machines[f.Machine]
	if !ok || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("program %s: built for %s %s: vmrunner runs x86_64 and arm64 (64-bit) programs", path, f.Machine, f.Class)
	}
	if opts.Arch != "" && opts.Arch != arch {
		return nil, fmt.Errorf("program %s: %w: it is %s but --arch %s was asked: leave out --arch (the arch is read from the program) or build it with GOARCH=%s",
			path, ErrArchMismatch, arch, opts.Arch, opts.Arch.GOARCH())
	}
	p := &Program{Path: abs, Arch: arch}
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	if interp == "" {
		p.Static = true
		return p, nil
	}
	p.Interp = interp
	host := opts.Host
	if host == "" {
		host = kernels.Host()
	}
	if arch != host && opts.Sysroot == "" {
		return nil, fmt.Errorf("program %s: %w: it is %s and needs %s, which this %s host does not have: build it with CGO_ENABLED=0, or give --sysroot DIR holding the %s libraries",
			path, ErrForeignDynamic, arch, interp, host, arch)
	}
	r := &resolver{root: opts.Sysroot, arch: arch, class: f.Class, machine: f.Machine, seen: map[string]bool{}}
	r.dirs = append(r.dirs, r.ldSoConf(opts.LdSoConf)...)
	r.dirs = append(r.dirs, defaultDirs[arch]...)
	ih, err := r.host(interp)
	if err != nil {
		return nil, fmt.Errorf("program %s: interpreter %s: %w", path, interp, err)
	}
	r.add(interp, ih)
	if err := r.closure(f, filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("program %s: %w", path, err)
	}
	p.Needs = r.files
	return p, nil
}

// interpreter returns the PT_INTERP path, "" for a static program.
func interpreter(f *elf.File) (string, error) {
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		if prog.Filesz == 0 || prog.Filesz > 4096 {
			return "", fmt.Errorf("%w: PT_INTERP of %d bytes", ErrNotELF, prog.Filesz)
		}
		b, err := io.ReadAll(io.LimitReader(prog.Open(), int64(prog.Filesz)))
		if err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		if n := len(b); n > 0 && b[n-1] == 0 {
			b = b[:n-1]
		}
		s := string(b)
		if !filepath.IsAbs(s) {
			return "", fmt.Errorf("%w: interpreter %q is not an absolute path", ErrNotELF, s)
		}
		return filepath.Clean(s), nil
	}
	return "", nil
}

// notELFHint says what the file looks like instead.
func notELFHint(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	head := make([]byte, 2)
	if n, _ := io.ReadFull(f, head); n == 2 && string(head) == "#!" {
		return "it is a script: run its interpreter, or build a Linux executable"
	}
	return "build a Linux executable (GOOS=linux) of x86_64 or arm64"
}
