package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModuleSize bounds a decompressed module. The largest Debian modules are
// a few MiB; anything far beyond that is not a module.
const maxModuleSize = 256 << 20

// moduleSuffixes are the file name endings of kernel modules, longest first.
var moduleSuffixes = []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"}

// moduleSuffix returns the module suffix of name, or "".
func moduleSuffix(name string) string {
	for _, s := range moduleSuffixes {
		if strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}

// decompressModule returns the plain ELF contents of a module file whose raw
// bytes are raw and whose name ends in suffix.
func decompressModule(raw []byte, suffix string) ([]byte, error) {
	var r io.Reader
	switch suffix {
	case ".ko":
		return raw, nil
	case ".ko.xz":
		xr, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("open xz: %w", err)
		}
		r = xr
	case ".ko.gz":
		gr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("open gzip: %w", err)
		}
		defer gr.Close()
		r = gr
	case ".ko.zst":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("open zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("unknown module suffix %q", suffix)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", suffix, err)
	}
	if len(out) > maxModuleSize {
		return nil, fmt.Errorf("decompress %s: more than %d bytes", suffix, maxModuleSize)
	}
	return out, nil
}
