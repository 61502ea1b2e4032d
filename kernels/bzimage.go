package kernels

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// The x86 boot protocol header (Documentation/arch/x86/boot.rst). No Go
// library parses it, hence these few offsets, all from the start of the
// file.
const (
	offSetupSects    = 0x1f1 // u8, 512-byte sectors of real-mode setup; 0 means 4
	offBootFlag      = 0x1fe // u16 0xAA55
	offHeaderMagic   = 0x202 // "HdrS"
	offVersion       = 0x206 // u16 boot protocol version
	offKernelVersion = 0x20e // u16, pointer to a NUL-terminated string, minus 0x200
	offXLoadFlags    = 0x236 // u16, protocol >= 2.12
	offPayloadOffset = 0x248 // u32, from the protected-mode code, protocol >= 2.08
	offPayloadLength = 0x24c // u32
	bzHeaderEnd      = 0x250

	xlfKernel64 = 1 << 0 // XLF_KERNEL_64: has the 64-bit entry point
)

// bzImage is what the setup header says about a bzImage.
type bzImage struct {
	Protocol      uint16
	KernelVersion string // "6.1.0-50-amd64 (debian-kernel@...) #1 SMP ..."
	Kernel64      bool
	PayloadStart  int64 // file offset of the compressed vmlinux
	PayloadLength int64
}

// isBzImage reports whether head (the file's first bytes) carries a setup
// header.
func isBzImage(head []byte) bool {
	return len(head) >= bzHeaderEnd && string(head[offHeaderMagic:offHeaderMagic+4]) == "HdrS"
}

// parseBzImage reads the setup header of a bzImage of the given size.
func parseBzImage(r io.ReaderAt, size int64) (*bzImage, error) {
	head := make([]byte, 0x1000)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read setup header: %w", err)
	}
	head = head[:n]
	if !isBzImage(head) {
		return nil, fmt.Errorf("read setup header: %w: no HdrS magic", ErrNotAKernel)
	}
	le := binary.LittleEndian
	b := &bzImage{Protocol: le.Uint16(head[offVersion:])}
	if b.Protocol < 0x208 {
		return nil, fmt.Errorf("read setup header: boot protocol %d.%02d has no payload fields (need 2.08)",
			b.Protocol>>8, b.Protocol&0xff)
	}
	if b.Protocol >= 0x20c {
		b.Kernel64 = le.Uint16(head[offXLoadFlags:])&xlfKernel64 != 0
	}
	if p := int64(le.Uint16(head[offKernelVersion:])); p != 0 {
		b.KernelVersion = readCString(r, p+0x200, 256)
	}
	setupSects := int64(head[offSetupSects])
	if setupSects == 0 {
		setupSects = 4
	}
	protStart := (setupSects + 1) * 512
	b.PayloadStart = protStart + int64(le.Uint32(head[offPayloadOffset:]))
	b.PayloadLength = int64(le.Uint32(head[offPayloadLength:]))
	if b.PayloadLength < 8 || b.PayloadStart+b.PayloadLength > size {
		return nil, fmt.Errorf("read setup header: payload [%d, +%d) outside the %d-byte file",
			b.PayloadStart, b.PayloadLength, size)
	}
	return b, nil
}

// readCString reads a NUL-terminated string of at most max bytes at off.
func readCString(r io.ReaderAt, off int64, max int) string {
	buf := make([]byte, max)
	n, _ := r.ReadAt(buf, off)
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf)
}

// extractPayload decompresses the vmlinux inside a bzImage to w and
// returns its size. The build appends the uncompressed size as a
// little-endian u32 to every payload (gzip's own trailer holds the same),
// so exactly that many bytes are read and trailing bytes never confuse a
// decompressor.
func extractPayload(r io.ReaderAt, b *bzImage, w io.Writer) (int64, error) {
	payload := io.NewSectionReader(r, b.PayloadStart, b.PayloadLength)
	var tail [4]byte
	if _, err := payload.ReadAt(tail[:], b.PayloadLength-4); err != nil {
		return 0, fmt.Errorf("read payload: %w", err)
	}
	size := int64(binary.LittleEndian.Uint32(tail[:]))
	var magic [16]byte
	if _, err := payload.ReadAt(magic[:], 0); err != nil {
		return 0, fmt.Errorf("read payload: %w", err)
	}
	format := compressionOf(magic[:])
	if format == "" {
		return 0, fmt.Errorf("read payload: unknown compression (starts with % x)", magic[:6])
	}
	compressed := io.Reader(payload)
	if format != formatGzip {
		compressed = io.NewSectionReader(r, b.PayloadStart, b.PayloadLength-4)
	}
	dec, err := decompress(format, compressed)
	if err != nil {
		return 0, fmt.Errorf("decompress %s payload: %w", format, err)
	}
	n, err := io.Copy(w, io.LimitReader(dec, size))
	if err != nil {
		return n, fmt.Errorf("decompress %s payload: %w", format, err)
	}
	if n != size {
		return n, fmt.Errorf("decompress %s payload: got %d bytes, header says %d", format, n, size)
	}
	return n, nil
}
