package initramfs

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeModule returns a minimal ELF64 relocatable file with a .modinfo section
// naming the module and its dependencies, like the kernel's modpost writes.
func fakeModule(t *testing.T, name string, depends ...string) []byte {
	t.Helper()
	return fakeModuleSoft(t, name, "", depends...)
}

// fakeModuleSoft is fakeModule with a softdep= entry ("pre: crc32c").
func fakeModuleSoft(t *testing.T, name, softdep string, depends ...string) []byte {
	t.Helper()
	modinfo := "license=GPL\x00depends=" + strings.Join(depends, ",") + "\x00\x00\x00name=" + name + "\x00vermagic=6.1.0 SMP mod_unload\x00"
	if softdep != "" {
		modinfo += "softdep=" + softdep + "\x00"
	}
	shstrtab := "\x00.modinfo\x00.shstrtab\x00"

	const ehsize, shentsize = 64, 64
	modinfoOff := uint64(ehsize)
	shstrOff := modinfoOff + uint64(len(modinfo))
	shOff := (shstrOff + uint64(len(shstrtab)) + 7) &^ 7

	var buf bytes.Buffer
	hdr := elf.Header64{
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shOff,
		Ehsize:    ehsize,
		Shentsize: shentsize,
		Shnum:     3,
		Shstrndx:  2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&buf, binary.LittleEndian, hdr)
	buf.WriteString(modinfo)
	buf.WriteString(shstrtab)
	buf.Write(make([]byte, shOff-uint64(buf.Len())))
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modinfoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstrtab)), Addralign: 1},
	}
	for _, s := range sections {
		binary.Write(&buf, binary.LittleEndian, s)
	}
	return buf.Bytes()
}

// compress encodes a module the way its file suffix says.
func compress(t *testing.T, suffix string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	switch suffix {
	case ".ko":
		return b
	case ".ko.xz":
		w, err := xz.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.gz":
		w := gzip.NewWriter(&out)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.zst":
		w, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown suffix %q", suffix)
	}
	return out.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFakeModuleParses(t *testing.T) {
	deps, err := moduleDepends(fakeModule(t, "x", "a", "b-c"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(deps, ",") != "a,b_c" {
		t.Fatalf("depends = %q, want a,b_c", deps)
	}
	if _, err := moduleDepends([]byte("not an ELF file at all, really")); err == nil {
		t.Fatal("parsed garbage as a module")
	}
}
