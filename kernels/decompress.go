package kernels

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
	"github.com/xi2/xz"
)

// Compression formats, as named in Info.Format for compressed images.
const (
	formatGzip  = "gzip"
	formatXZ    = "xz"
	formatLZMA  = "lzma"
	formatZstd  = "zstd"
	formatLZ4   = "lz4"
	formatBzip2 = "bzip2"
	formatLZO   = "lzo"
)

// compressionOf names the compression format data starts with, or "".
func compressionOf(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return formatGzip
	case bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return formatXZ
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return formatZstd
	case bytes.HasPrefix(data, []byte{0x02, 0x21, 0x4c, 0x18}), // legacy frame, what Linux uses
		bytes.HasPrefix(data, []byte{0x04, 0x22, 0x4d, 0x18}):
		return formatLZ4
	case bytes.HasPrefix(data, []byte("BZh")) && len(data) > 3 && data[3] >= '1' && data[3] <= '9':
		return formatBzip2
	case bytes.HasPrefix(data, []byte{0x89, 'L', 'Z', 'O'}):
		return formatLZO
	case len(data) >= 13 && data[0] == 0x5d && data[1] == 0 && data[2] == 0:
		// .lzma ("lzma alone"): properties byte 0x5d (lc=3 lp=0 pb=2, what
		// every lzma tool writes) and a little-endian dictionary size.
		return formatLZMA
	}
	return ""
}

// decompress returns a reader of r decompressed as format.
func decompress(format string, r io.Reader) (io.Reader, error) {
	switch format {
	case formatGzip:
		return gzip.NewReader(r)
	case formatXZ:
		// xi2/xz rather than ulikunitz/xz: it implements the BCJ filters
		// Linux compresses x86 kernels with (xz --x86), and decodes faster.
		return xz.NewReader(r, 0)
	case formatZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case formatLZ4:
		return lz4.NewReader(r), nil
	case formatBzip2:
		return bzip2.NewReader(r), nil
	case formatLZMA:
		return lzma.NewReader(r)
	}
	return nil, fmt.Errorf("decompress: unsupported format %q", format)
}
