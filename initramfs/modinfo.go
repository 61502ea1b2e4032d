package initramfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// modinfo returns the key=value entries of a module's .modinfo section, in
// file order. A key may repeat (alias=, for instance).
func modinfo(module []byte) ([][2]string, error) {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	var kvs [][2]string
	for _, entry := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(entry), "=")
		if !ok {
			continue // padding between entries
		}
		kvs = append(kvs, [2]string{k, v})
	}
	return kvs, nil
}

// moduleDepends returns the names in a module's depends= entry.
func moduleDepends(module []byte) ([]string, error) {
	kvs, err := modinfo(module)
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, kv := range kvs {
		if kv[0] != "depends" {
			continue
		}
		for _, d := range strings.Split(kv[1], ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, moduleName(d))
			}
		}
	}
	return deps, nil
}
