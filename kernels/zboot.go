package kernels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// FormatZboot is Info.Format of an EFI zboot image: a PE file whose
// payload is a compressed kernel image (arm64's vmlinuz on distros that
// build CONFIG_EFI_ZBOOT). QEMU's -kernel does not unwrap it: vmrunner
// boots the Image inside.
const FormatZboot = "efi-zboot"

// zboot is the header of an EFI zboot image
// (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg" at offset 4,
// the payload's offset and size (little-endian u32) at 8 and 12, the
// compression's name (NUL-terminated) at 24.
type zboot struct {
	offset, size int64
	compression  string
}

// zbootHeader reads head as an EFI zboot header.
func zbootHeader(head []byte) (zboot, bool) {
	if len(head) < 56 || !bytes.HasPrefix(head, []byte("MZ")) || string(head[4:8]) != "zimg" {
		return zboot{}, false
	}
	name, _, _ := bytes.Cut(head[24:56], []byte{0})
	return zboot{
		offset:      int64(binary.LittleEndian.Uint32(head[8:12])),
		size:        int64(binary.LittleEndian.Uint32(head[12:16])),
		compression: string(name),
	}, true
}

// payload returns the zboot's decompressed payload in f (size bytes).
func (z zboot) payload(f io.ReaderAt, size int64) (io.Reader, error) {
	if z.offset <= 0 || z.size <= 0 || z.offset+z.size > size {
		return nil, fmt.Errorf("%w: EFI zboot image with a payload at %d of %d bytes, past its %d bytes", ErrNotAKernel, z.offset, z.size, size)
	}
	switch z.compression {
	case formatGzip, formatXZ, formatZstd, formatLZ4, formatBzip2, formatLZMA:
	default:
		return nil, fmt.Errorf("%w: EFI zboot image compressed with %q, which vmrunner cannot decompress (it reads gzip, xz, zstd, lz4, bzip2, lzma)",
			ErrNotAKernel, z.compression)
	}
	dec, err := decompress(z.compression, io.NewSectionReader(f, z.offset, z.size))
	if err != nil {
		return nil, fmt.Errorf("%w: EFI zboot payload that does not decompress as %s: %v", ErrNotAKernel, z.compression, err)
	}
	return dec, nil
}

// inspectZboot identifies the image inside an EFI zboot image.
func inspectZboot(f io.ReaderAt, size int64, z zboot) (Info, error) {
	dec, err := z.payload(f, size)
	if err != nil {
		return Info{}, err
	}
	inner := make([]byte, 4096)
	m, _ := io.ReadFull(dec, inner)
	info, ok := inspectHead(inner[:m])
	if !ok {
		return Info{}, fmt.Errorf("%w: EFI zboot image holding %s", ErrNotAKernel, describe(inner[:m]))
	}
	info.Format = FormatZboot
	return info, nil
}

// unwrapZboot writes the Image inside the EFI zboot image src (name in
// errors) to dst and checks it is an arm64 Image.
func unwrapZboot(src, dst, name string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	head := make([]byte, 64)
	if _, err := io.ReadFull(in, head); err != nil {
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	z, ok := zbootHeader(head)
	if !ok {
		return fmt.Errorf("unwrap %s: %w: not an EFI zboot image", name, ErrNotAKernel)
	}
	dec, err := z.payload(in, st.Size())
	if err != nil {
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	_, err = io.Copy(out, dec)
	if err = errors.Join(err, out.Close()); err != nil {
		os.Remove(dst)
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	info, err := Inspect(dst)
	if err == nil && info.Format != FormatARM64Image {
		err = fmt.Errorf("%w: found %s inside", ErrNotAKernel, info.Format)
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("unwrap %s: %w", name, err)
	}
	return nil
}

// zbootCompression is Compression for an EFI zboot image: "gzip in EFI
// zboot".
func zbootCompression(path string) (string, error) {
	b := make([]byte, 64)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	z, _ := zbootHeader(b)
	return z.compression + " in EFI zboot", nil
}
