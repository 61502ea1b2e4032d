package kernels

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zbootImage wraps payload, compressed as comp, in an EFI zboot header
// (drivers/firmware/efi/libstub/zboot-header.S) padded to 4 KiB, as a
// distro's arm64 vmlinuz built with CONFIG_EFI_ZBOOT is.
func zbootImage(comp string, payload []byte) []byte {
	const at = 4096
	img := make([]byte, at, at+len(payload))
	copy(img, "MZ")
	copy(img[4:], "zimg")
	binary.LittleEndian.PutUint32(img[8:], at)
	binary.LittleEndian.PutUint32(img[12:], uint32(len(payload)))
	copy(img[24:], comp)
	copy(img[0x38:], "\xcd\x23\x82\x81") // LINUX_PE_MAGIC
	return append(img, payload...)
}

// TestZboot: an EFI zboot image is inspected as the arm64 Image inside and
// unwrapped to it for booting; one compressed in a way vmrunner cannot
// read, or with a payload past its end, is refused saying so.
func TestZboot(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("vmlinuz", zbootImage(formatGzip, gzipped(arm64Image())))
	info, err := Inspect(good)
	if err != nil || info != (Info{Format: FormatZboot, Arch: ARM64}) {
		t.Fatalf("Inspect = %+v, %v; want an arm64 efi-zboot", info, err)
	}
	if c, err := Compression(good); err != nil || c != "gzip in EFI zboot" {
		t.Errorf("Compression = %q, %v; want gzip in EFI zboot", c, err)
	}
	img, err := deriveImages(dir, "vmlinuz", "fixture", ARM64, slog.New(slog.DiscardHandler))
	if err != nil || img != imageName {
		t.Fatalf("deriveImages = %q, %v; want %s", img, err, imageName)
	}
	if info, err := Inspect(filepath.Join(dir, img)); err != nil || info.Format != FormatARM64Image {
		t.Errorf("unwrapped image: %+v, %v", info, err)
	}
	if _, err := checkArch(good, "fixture", X86_64); !errors.Is(err, ErrWrongArch) {
		t.Errorf("an arm64 zboot for x86_64: %v, want ErrWrongArch", err)
	}

	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"lzo", zbootImage(formatLZO, []byte("lzo data")), `EFI zboot image compressed with "lzo", which vmrunner cannot decompress`},
		{"short", zbootImage(formatGzip, gzipped(arm64Image()))[:4106], "past its 4106 bytes"},
		{"text", zbootImage(formatGzip, gzipped([]byte("hello"))), "EFI zboot image holding text"},
	} {
		p := write(tc.name, tc.data)
		_, err := Inspect(p)
		if !errors.Is(err, ErrNotAKernel) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want ErrNotAKernel naming %s and saying %q", tc.name, err, p, tc.msg)
		}
	}
}
