package kerneltest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/kernels"
)

// BTF returns k's own BTF as a separate file, as pahole
// --btf_encode_detached and btfhub write it: the .BTF section of the ELF
// vmlinux on x86_64 (debug/elf), and on arm64, whose raw Image is no ELF,
// the BTF blob found in the Image by its header.
func BTF(t testing.TB, k *kernels.Kernel) []byte {
	t.Helper()
	data, err := CutBTF(k.Uncompressed)
	if err != nil {
		t.Fatalf("BTF of %s: %v", k.Release, err)
	}
	return data
}

// CutBTF cuts the kernel's BTF out of an uncompressed kernel image.
func CutBTF(path string) ([]byte, error) {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		sec := f.Section(".BTF")
		if sec == nil {
			return nil, errors.New("no .BTF section")
		}
		return sec.Data()
	}
	img, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// struct btf_header: magic 0xeB9F, version 1, flags 0, hdr_len 24,
	// type_off, type_len, str_off, str_len.
	magic := []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0}
	for off := 0; ; {
		i := bytes.Index(img[off:], magic)
		if i < 0 {
			return nil, errors.New("no BTF header in the image")
		}
		start := off + i
		off = start + 1
		if start+24 > len(img) {
			continue
		}
		h := img[start+8 : start+24]
		strOff, strLen := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		end := start + 24 + int(strOff) + int(strLen)
		if end > len(img) || end <= start {
			continue
		}
		blob := img[start:end]
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(blob))
		if err != nil {
			continue
		}
		if _, err := spec.AnyTypeByName("task_struct"); err == nil {
			return bytes.Clone(blob), nil
		}
	}
}
