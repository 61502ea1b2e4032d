package kernels

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
)

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry
// point, emitted by Linux when CONFIG_PVH=y (arch/x86/platform/pvh/head.S).
// QEMU boots an ELF vmlinux directly through it, skipping the bzImage
// decompressor, which is slow under emulation.
const xenElfnotePhys32Entry = 18

// hasPVHNote reports whether an ELF file has a Xen PHYS32_ENTRY note, in a
// PT_NOTE segment or an SHT_NOTE section. debug/elf does not decode notes,
// hence the small walk below.
func hasPVHNote(f *elf.File) bool {
	return hasNote(f, func(owner string, typ uint32) bool {
		return owner == "Xen" && typ == xenElfnotePhys32Entry
	})
}

// hasNote reports whether any note of f satisfies match.
func hasNote(f *elf.File, match func(owner string, typ uint32) bool) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE && notesContain(p.Open(), p.Filesz, f.ByteOrder, match) {
			return true
		}
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOTE && notesContain(s.Open(), s.Size, f.ByteOrder, match) {
			return true
		}
	}
	return false
}

// notesContain walks the Elf_Nhdr records of one note area: namesz, descsz
// and type as u32, then the name and the descriptor, each padded to 4
// bytes (the 64-bit ABI uses 4-byte alignment for notes too).
func notesContain(r io.ReadSeeker, size uint64, bo binary.ByteOrder, match func(owner string, typ uint32) bool) bool {
	const maxNotes = 1 << 20 // a kernel's notes are a few hundred bytes
	if size > maxNotes {
		size = maxNotes
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return false
	}
	align := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(data) >= 12 {
		namesz, descsz, t := uint64(bo.Uint32(data)), uint64(bo.Uint32(data[4:])), bo.Uint32(data[8:])
		data = data[12:]
		if align(namesz) > uint64(len(data)) {
			return false
		}
		owner := bytes.TrimRight(data[:namesz], "\x00")
		data = data[align(namesz):]
		if align(descsz) > uint64(len(data)) {
			// The last descriptor may lack its padding.
			if descsz > uint64(len(data)) {
				return false
			}
			data = data[len(data):]
		} else {
			data = data[align(descsz):]
		}
		if match(string(owner), t) {
			return true
		}
	}
	return false
}
