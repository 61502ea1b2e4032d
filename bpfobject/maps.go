package bpfobject

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Bounds on a map size set from matrix.yaml: a guest has a few hundred
// megabytes, and a hash map preallocates every entry.
const (
	MaxMapEntries = 1 << 24
	MaxMapBytes   = 256 << 20
)

// CheckMaxEntries says whether a loader may give map name of spec n entries:
// the map exists, its size means a number of entries (not a data section
// or a struct_ops map), a ring buffer gets a power of two of at least a
// page, and the map's memory stays under MaxMapBytes.
func CheckMaxEntries(spec *ebpf.CollectionSpec, name string, n uint32) error {
	ms, ok := spec.Maps[name]
	if !ok {
		return fmt.Errorf("no map %q in the object%s", name, mapNames(spec))
	}
	switch {
	case strings.HasPrefix(name, ".") || ms.Type == ebpf.StructOpsMap:
		return fmt.Errorf("%s holds the object's globals or struct_ops, one entry: its size cannot be set", name)
	case n == 0:
		return fmt.Errorf("%s: max_entries must be at least 1", name)
	case n > MaxMapEntries:
		return fmt.Errorf("%s: max_entries %d is over vmrunner's bound of %d", name, n, MaxMapEntries)
	}
	switch ms.Type {
	case ebpf.RingBuf:
		if n < 4096 || bits.OnesCount32(n) != 1 {
			return fmt.Errorf("%s is a ring buffer: max_entries is its size in bytes, a power of two of at least 4096, got %d", name, n)
		}
	default:
		if b := uint64(n) * uint64(ms.KeySize+ms.ValueSize); b > MaxMapBytes {
			return fmt.Errorf("%s: %d entries of %d bytes need %d MiB, over vmrunner's bound of %d MiB", name, n, ms.KeySize+ms.ValueSize, b>>20, MaxMapBytes>>20)
		}
	}
	return nil
}

func mapNames(spec *ebpf.CollectionSpec) string {
	var names []string
	for n := range spec.Maps {
		if !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return " (it has no maps)"
	}
	slices.Sort(names)
	return "; its maps: " + strings.Join(names, ", ")
}
