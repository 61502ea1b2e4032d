package matrix

import (
	"debug/elf"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/inputfile"
)

// MaxObjectFile bounds a BPF object or uprobe binary that the host reads
// while it parses a matrix or a repro: the bound of what it would pack for
// the guest anyway (initramfs.MaxFileSize).
const MaxObjectFile = initramfs.MaxFileSize

// LoadObjectSpec reads the BPF object at path as cilium/ebpf does, but
// only a regular file of at most maxObjectFile bytes (inputfile.Open: a
// FIFO, a device or a symlink to one is refused without blocking, a larger
// file is refused naming the limit). The ELF reader reads the sections it
// needs through the open file, never more than the file holds.
func LoadObjectSpec(path string) (*ebpf.CollectionSpec, error) {
	f, _, err := inputfile.Open(path, MaxObjectFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	spec, err := ebpf.LoadCollectionSpecFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return spec, nil
}

// openELF opens the ELF file at path under the same rules.
func openELF(path string) (*elf.File, func() error, error) {
	f, _, err := inputfile.Open(path, MaxObjectFile)
	if err != nil {
		return nil, nil, err
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not an ELF executable: %v", path, err)
	}
	return ef, f.Close, nil
}
