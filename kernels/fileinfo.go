package kernels

import (
	"fmt"
	"io"
	"os"
)

// Compression says how the kernel inside an image file is compressed:
// the compression of a compressed image (arm64's vmlinuz.gz), that of a
// bzImage's payload, or "none" for an ELF vmlinux or a raw arm64 Image.
func Compression(path string) (string, error) {
	info, err := Inspect(path)
	if err != nil {
		return "", err
	}
	switch info.Format {
	case FormatELF, FormatARM64Image:
		return "none", nil
	case FormatBzImage:
	case FormatZboot:
		return zbootCompression(path)
	default:
		return info.Format, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	b, err := parseBzImage(f, st.Size())
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	head := make([]byte, 16)
	if _, err := f.ReadAt(head, b.PayloadStart); err != nil && err != io.EOF {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if c := compressionOf(head); c != "" {
		return c, nil
	}
	return "none", nil
}
