package initramfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/internal/inputfile"
)

// DefaultModules is what the guest needs for its control channel and panic
// reporting: the virtio console and a virtio transport are required, pvpanic
// is optional. Dependencies (virtio, virtio_ring, pvpanic...) are added by
// Closure.
var DefaultModules = []string{"virtio_mmio", "virtio_pci", "virtio_console", "pvpanic", "pvpanic_mmio", "pvpanic_pci"}

// Module is one kernel module of a closure.
type Module struct {
	// Name is the canonical module name, with '_' for '-'.
	Name string
	// Path is the module file on the host, possibly compressed, or "" for a
	// built-in module.
	Path string
	// Depends are the names of the modules this one needs loaded first.
	Depends []string
	// Builtin is true for modules compiled into the kernel.
	Builtin bool
}

// ErrMissingDependency is returned by Closure when a module depends on a
// module the kernel has neither as a file nor built in.
var ErrMissingDependency = errors.New("missing module dependency")

// moduleName returns the canonical name of a module file or name.
func moduleName(file string) string {
	base := path.Base(filepath.ToSlash(file))
	base = strings.TrimSuffix(base, moduleSuffix(base))
	return strings.ReplaceAll(base, "-", "_")
}

// moduleIndex maps module names to files under a lib/modules/<release> dir.
type moduleIndex struct {
	dir     string
	files   map[string]string // name -> path
	builtin map[string]bool
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, files: map[string]string{}, builtin: map[string]bool{}}
	if dir == "" {
		return idx, nil
	}
	// WalkDir visits in lexical order, so the first file of a name wins
	// deterministically.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || moduleSuffix(d.Name()) == "" {
			return nil
		}
		name := moduleName(d.Name())
		if _, ok := idx.files[name]; !ok {
			idx.files[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules: %w", err)
	}
	builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	for _, line := range strings.Split(string(builtin), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			idx.builtin[moduleName(line)] = true
		}
	}
	return idx, nil
}

// HasModule reports whether the kernel whose lib/modules/<release>
// directory is modulesDir has module name, as a file or built in.
func HasModule(modulesDir, name string) (bool, error) {
	idx, err := loadModuleIndex(modulesDir)
	if err != nil {
		return false, err
	}
	name = moduleName(name)
	return idx.files[name] != "" || idx.builtin[name], nil
}

// Closure resolves wanted module names to files in dependency order
// (dependencies first), adding every module they depend on, and the soft
// dependencies they want loaded first (softdep=pre:) that the kernel has. modulesDir is a
// kernel's lib/modules/<release> directory; "" means a kernel without
// modules, for which the closure is empty.
//
// A wanted module the kernel has neither as a file nor built in is skipped.
// A missing dependency is an error wrapping ErrMissingDependency. Built-in
// modules are returned with Builtin set and no Path.
func Closure(modulesDir string, wanted []string) ([]Module, error) {
	idx, err := loadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	c := closure{idx: idx, state: map[string]int{}}
	for _, w := range wanted {
		name := moduleName(w)
		if idx.files[name] == "" && !idx.builtin[name] {
			continue
		}
		if err := c.visit(name, nil); err != nil {
			return nil, err
		}
	}
	return c.order, nil
}

const (
	visiting = 1
	visited  = 2
)

type closure struct {
	idx   *moduleIndex
	state map[string]int
	order []Module
}

// visit appends name after its dependencies. chain is the path of modules
// that led here, for error messages.
func (c *closure) visit(name string, chain []string) error {
	switch c.state[name] {
	case visited:
		return nil
	case visiting:
		return fmt.Errorf("resolve module %s: dependency cycle %s", name, strings.Join(append(chain, name), " -> "))
	}
	chain = append(chain, name)
	file := c.idx.files[name]
	if file == "" {
		if !c.idx.builtin[name] {
			return fmt.Errorf("resolve module %s: %w (needed by %s)", name, ErrMissingDependency, strings.Join(chain[:len(chain)-1], " -> "))
		}
		c.state[name] = visited
		c.order = append(c.order, Module{Name: name, Builtin: true})
		return nil
	}
	c.state[name] = visiting
	raw, err := inputfile.ReadFile(context.Background(), file, maxModuleSize)
	if err != nil {
		return fmt.Errorf("read module %s: %w", name, err)
	}
	elf, err := decompressModule(raw, moduleSuffix(file))
	if err != nil {
		return fmt.Errorf("read module %s: %w", file, err)
	}
	deps, err := moduleDepends(elf)
	if err != nil {
		return fmt.Errorf("read module %s: %w", file, err)
	}
	for _, d := range deps {
		if err := c.visit(d, chain); err != nil {
			return err
		}
	}
	soft, err := moduleSoftPre(elf)
	if err != nil {
		return fmt.Errorf("read module %s: %w", file, err)
	}
	for _, d := range soft {
		// A soft dependency is often a crypto algorithm's name, provided
		// by <name>_generic; one the kernel lacks is skipped, as modprobe
		// skips it.
		for _, cand := range []string{d, d + "_generic"} {
			if c.idx.files[cand] != "" || c.idx.builtin[cand] {
				if err := c.visit(cand, chain); err != nil {
					return err
				}
				break
			}
		}
	}
	c.state[name] = visited
	c.order = append(c.order, Module{Name: name, Path: file, Depends: deps})
	return nil
}
