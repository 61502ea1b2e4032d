package kernels

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// Image formats reported in Info.Format. Compressed images report their
// compression (formatGzip...) and the Arch of what is inside.
const (
	FormatBzImage    = "bzImage"
	FormatELF        = "elf"
	FormatARM64Image = "arm64-image"
)

// Info identifies a kernel image.
type Info struct {
	// Format is "bzImage", "elf", "arm64-image", "efi-zboot" (an EFI
	// zboot image: Arch is that of the image inside), or the compression
	// of a compressed image ("gzip", "xz", "zstd", "lz4", "bzip2", "lzma").
	Format string
	Arch   Arch
	// PVH is set for an ELF vmlinux with a PVH entry point. A bzImage's
	// payload is not decompressed by Inspect, so PVH is false for it.
	PVH bool
	// Version is the bzImage's kernel_version string when present:
	// "6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
	Version string
	// Release is the first word of Version: what uname -r prints.
	Release string
}

// arm64ImageMagic is at offset 0x38 of an arm64 Image
// (Documentation/arch/arm64/booting.rst).
const arm64ImageMagic = "ARM\x64"

// Inspect identifies a kernel image by its contents. A file that is not a
// kernel image gives an error wrapping ErrNotAKernel that says what was
// found instead.
func Inspect(path string) (Info, error) {
	return inspectAs(path, path)
}

// inspectAs is Inspect naming the file name in errors.
func inspectAs(path, name string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	head = head[:n]

	switch {
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		info, err := inspectELF(f)
		if err != nil {
			return Info{}, fmt.Errorf("inspect %s: %w", name, err)
		}
		return info, nil
	case isBzImage(head):
		b, err := parseBzImage(f, st.Size())
		if err != nil {
			return Info{}, fmt.Errorf("inspect %s: %w", name, err)
		}
		info := Info{Format: FormatBzImage, Arch: X86_64, Version: b.KernelVersion}
		if !b.Kernel64 {
			info.Arch = "i386"
		}
		info.Release, _, _ = strings.Cut(b.KernelVersion, " ")
		return info, nil
	}
	if z, ok := zbootHeader(head); ok {
		info, err := inspectZboot(f, st.Size(), z)
		if err != nil {
			return Info{}, fmt.Errorf("inspect %s: %w", name, err)
		}
		return info, nil
	}
	if info, ok := inspectHead(head); ok {
		return info, nil
	}
	if format := compressionOf(head); format != "" {
		// A compressed image (arm64's vmlinuz is a gzip'd Image): look at
		// the first bytes inside.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Info{}, fmt.Errorf("inspect %s: %w", name, err)
		}
		dec, err := decompress(format, f)
		if err != nil {
			return Info{}, fmt.Errorf("inspect %s: %w: %s data that does not decompress: %v", name, ErrNotAKernel, format, err)
		}
		inner := make([]byte, 4096)
		m, _ := io.ReadFull(dec, inner)
		info, ok := inspectHead(inner[:m])
		if !ok {
			return Info{}, fmt.Errorf("inspect %s: %w: %s-compressed %s", name, ErrNotAKernel, format, describe(inner[:m]))
		}
		info.Format = format
		return info, nil
	}
	return Info{}, fmt.Errorf("inspect %s: %w: found %s", name, ErrNotAKernel, describe(head))
}

// inspectHead identifies an image from its first bytes only.
func inspectHead(head []byte) (Info, bool) {
	switch {
	case len(head) >= 0x3c && string(head[0x38:0x3c]) == arm64ImageMagic:
		return Info{Format: FormatARM64Image, Arch: ARM64}, true
	case isBzImage(head):
		return Info{Format: FormatBzImage, Arch: X86_64}, true
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)) && len(head) >= 20:
		// Only the header is at hand: trust e_machine.
		var m elf.Machine
		if head[elf.EI_DATA] == byte(elf.ELFDATA2MSB) {
			m = elf.Machine(uint16(head[18])<<8 | uint16(head[19]))
		} else {
			m = elf.Machine(uint16(head[18]) | uint16(head[19])<<8)
		}
		return Info{Format: FormatELF, Arch: archOfMachine(m)}, true
	}
	return Info{}, false
}

// inspectELF identifies an ELF vmlinux. Any ELF file is not a kernel: a
// vmlinux carries notes owned by "Linux" (build salt) or "Xen" (PVH), or
// a __ksymtab section.
func inspectELF(r io.ReaderAt) (Info, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Info{}, fmt.Errorf("%w: broken ELF file: %v", ErrNotAKernel, err)
	}
	info := Info{Format: FormatELF, Arch: archOfMachine(f.Machine), PVH: hasPVHNote(f)}
	linux := func(owner string, _ uint32) bool { return owner == "Linux" || owner == "Xen" }
	if !hasNote(f, linux) && f.Section("__ksymtab") == nil {
		return Info{}, fmt.Errorf("%w: found an ELF %s %s without Linux kernel notes", ErrNotAKernel, f.Machine, f.Type)
	}
	return info, nil
}

// archOfMachine names the Arch of an ELF machine; unsupported machines get
// their ELF name so that errors can say what was found.
func archOfMachine(m elf.Machine) Arch {
	switch m {
	case elf.EM_X86_64:
		return X86_64
	case elf.EM_AARCH64:
		return ARM64
	}
	return Arch(strings.ToLower(strings.TrimPrefix(m.String(), "EM_")))
}

// describe says in a few words what data looks like, for error messages.
func describe(data []byte) string {
	if len(data) == 0 {
		return "an empty file"
	}
	prefix := data[:min(len(data), 16)]
	printable := true
	for _, r := range string(prefix) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			printable = false
			break
		}
	}
	if printable {
		return fmt.Sprintf("text starting %q", prefix)
	}
	return fmt.Sprintf("unknown data starting % x", prefix)
}

// checkArch validates that path is a kernel image for arch and returns what
// Inspect found.
// name is used in errors.
func checkArch(path, name string, arch Arch) (Info, error) {
	info, err := inspectAs(path, name)
	if err != nil {
		return Info{}, err
	}
	if info.Arch != arch {
		return info, fmt.Errorf("check %s: %w: found a %s %s kernel, want %s", name, ErrWrongArch, info.Arch, info.Format, arch)
	}
	return info, nil
}
