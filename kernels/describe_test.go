package kernels

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDescribe(t *testing.T) {
	m := newMirror(t)
	key := testKey(t, 0)
	m.publish(t, "bookworm", bookworm(t), key)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Cache: cache, Client: m.Client(), Keyring: writeKeyring(t, key), Logger: quietLogger()}
	for _, tt := range []struct {
		arch               Arch
		format, compressed string
		pvh                bool
		btfFrom            string
	}{
		// The synthetic vmlinux has no .BTF section: the config says so.
		{X86_64, FormatBzImage, formatXZ, true, "CONFIG_DEBUG_INFO_BTF=y"},
		{ARM64, FormatARM64Image, formatGzip, false, "CONFIG_DEBUG_INFO_BTF=y"},
	} {
		t.Run(string(tt.arch), func(t *testing.T) {
			spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian"}}
			k, err := Resolve(context.Background(), "6.1", spec, tt.arch, opts)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Describe(k)
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != "6.1" || d.Arch != tt.arch || d.Release != k.Release || d.Format != tt.format ||
				d.Compression != tt.compressed || d.PVH != tt.pvh || !d.BTF || d.BTFFrom != tt.btfFrom || d.Modules != 2 {
				t.Errorf("Describe = %+v", d)
			}
			if d.Config["CONFIG_PVH"] != "y" || d.Config["CONFIG_BPF_SYSCALL"] != "n" || d.Origin == nil || d.Origin.Type != "debian" {
				t.Errorf("config %v origin %+v", d.Config, d.Origin)
			}

			// The same kernel read back from its cache directory.
			dk, err := LoadDir(filepath.Dir(filepath.Dir(k.Image)))
			if err != nil {
				t.Fatal(err)
			}
			if dk.Image != k.Image || dk.Modules != k.Modules || dk.Release != k.Release || dk.Arch != k.Arch {
				t.Errorf("LoadDir = %+v, want %+v", dk, k)
			}
		})
	}
	if _, err := LoadDir(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDir of an empty directory: %v, want ErrNotExist", err)
	}
}

func TestHasBTFSection(t *testing.T) {
	dir := t.TempDir()
	with, without := filepath.Join(dir, "with"), filepath.Join(dir, "without")
	os.WriteFile(with, elfWithSection(t, ".BTF"), 0o644)
	os.WriteFile(without, elfWithSection(t, ".data"), 0o644)
	if !HasBTFSection(with) || HasBTFSection(without) || HasBTFSection(filepath.Join(dir, "none")) {
		t.Errorf("HasBTFSection: with %v, without %v", HasBTFSection(with), HasBTFSection(without))
	}
}

// TestResolveOffline: an offline resolve finds what the cache has and
// says ErrNotCached for the rest, without a request.
func TestResolveOffline(t *testing.T) {
	m := newMirror(t)
	key := testKey(t, 0)
	m.publish(t, "bookworm", bookworm(t), key)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Debian: &DebianSpec{Suite: "bookworm", Mirror: m.URL + "/debian"}}
	opts := Options{Cache: cache, Client: m.Client(), Keyring: writeKeyring(t, key), Logger: quietLogger(), Offline: true}
	if _, err := Resolve(context.Background(), "6.1", spec, X86_64, opts); !errors.Is(err, ErrNotCached) {
		t.Fatalf("offline, empty cache: %v, want ErrNotCached", err)
	}
	if n := m.total(); n != 0 {
		t.Errorf("offline resolve made %d requests", n)
	}
	opts.Offline = false
	k, err := Resolve(context.Background(), "6.1", spec, X86_64, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Offline, opts.Refresh = true, true // even a refresh stays offline
	before := m.total()
	k2, err := Resolve(context.Background(), "6.1", spec, X86_64, opts)
	if err != nil || k2.SHA256 != k.SHA256 {
		t.Fatalf("offline, cached: %v, %v", k2, err)
	}
	if n := m.total() - before; n != 0 {
		t.Errorf("offline resolve made %d requests", n)
	}
}

// elfWithSection is a 64-bit little-endian ELF file with one section,
// name, holding a few bytes, and the section name table.
func elfWithSection(t testing.TB, name string) []byte {
	t.Helper()
	const ehsize, shsize = 64, 64
	data := []byte("section data")
	strtab := append(append([]byte{0}, name...), append([]byte{0}, ".shstrtab\x00"...)...)
	dataOff := uint64(ehsize)
	strOff := dataOff + uint64(len(data))
	shOff := strOff + uint64(len(strtab))
	var b bytes.Buffer
	le := binary.LittleEndian
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	b.Write(ident[:])
	binary.Write(&b, le, struct {
		Type, Machine              uint16
		Version                    uint32
		Entry, Phoff, Shoff        uint64
		Flags                      uint32
		Ehsize, Phentsize, Phnum   uint16
		Shentsize, Shnum, Shstrndx uint16
	}{uint16(elf.ET_EXEC), uint16(elf.EM_X86_64), 1, 0, 0, shOff, 0, ehsize, 0, 0, shsize, 3, 2})
	b.Write(data)
	b.Write(strtab)
	binary.Write(&b, le, elf.Section64{})
	binary.Write(&b, le, elf.Section64{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: dataOff, Size: uint64(len(data)), Addralign: 1})
	binary.Write(&b, le, elf.Section64{Name: uint32(2 + len(name)), Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(strtab)), Addralign: 1})
	return b.Bytes()
}
