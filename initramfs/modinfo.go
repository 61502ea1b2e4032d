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

// moduleSoftPre returns the names a module's softdep= entries want loaded
// before it ("softdep=pre: crc32c"): modprobe loads them when it can, and
// the module may need them at init (libcrc32c asks the crypto API for
// crc32c, which would load it through modprobe, absent from the guest).
func moduleSoftPre(module []byte) ([]string, error) {
	kvs, err := modinfo(module)
	if err != nil {
		return nil, err
	}
	var pre []string
	for _, kv := range kvs {
		if kv[0] != "softdep" {
			continue
		}
		in := false
		for _, f := range strings.Fields(kv[1]) {
			switch f {
			case "pre:":
				in = true
			case "post:":
				in = false
			default:
				if in {
					pre = append(pre, moduleName(f))
				}
			}
		}
	}
	return pre, nil
}
