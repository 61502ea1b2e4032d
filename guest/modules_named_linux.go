package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vmrunner/vmrunner/protocol"
)

// loadNamedModules loads kernel modules by name with their dependencies,
// from what the host packed for loading on demand (protocol.ModuleIndexPath).
func loadNamedModules(names []string) error {
	return loadIndexedModules(protocol.ModuleIndexPath, names, loadModule)
}

// loadIndexedModules loads the modules named, each after its dependencies,
// as index lists them; load loads one file (a module already loaded is
// fine).
func loadIndexedModules(index string, names []string, load func(path string) error) error {
	f, err := os.Open(index)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no module of %s is in this kernel's module tree", strings.Join(names, ", "))
	}
	if err != nil {
		return fmt.Errorf("read module index: %w", err)
	}
	defer f.Close()
	paths := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 {
			paths[fields[0]] = fields[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read module index: %w", err)
	}
	var errs []error
	for _, name := range names {
		name = strings.ReplaceAll(name, "-", "_")
		files, ok := paths[name]
		if !ok {
			errs = append(errs, fmt.Errorf("module %s: not in this kernel's module tree", name))
			continue
		}
		for _, p := range files {
			if err := load(p); err != nil {
				errs = append(errs, fmt.Errorf("module %s: load %s: %w", name, p, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}
