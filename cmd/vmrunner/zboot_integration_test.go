package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestZbootKernel boots Debian's arm64 kernel wrapped as an EFI zboot
// image (the header of drivers/firmware/efi/libstub/zboot-header.S around
// its gzip'd Image, as distros that build CONFIG_EFI_ZBOOT ship vmlinuz):
// vmrunner unwraps the Image and the btf check passes on its release.
func TestZbootKernel(t *testing.T) {
	integration(t)
	arm64 := kerneltest.Debian(t, kernels.ARM64)
	gz, err := os.ReadFile(arm64.Image)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(gz, []byte{0x1f, 0x8b}) {
		// The cache keeps the raw Image: compress it as zboot does.
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(gz); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		gz = b.Bytes()
	}
	const at = 4096
	img := make([]byte, at, at+len(gz))
	copy(img, "MZ")
	copy(img[4:], "zimg")
	binary.LittleEndian.PutUint32(img[8:], at)
	binary.LittleEndian.PutUint32(img[12:], uint32(len(gz)))
	copy(img[24:], "gzip")
	img = append(img, gz...)
	dir := t.TempDir()
	zboot := filepath.Join(dir, "vmlinuz.efi")
	if err := os.WriteFile(zboot, img, 0o644); err != nil {
		t.Fatal(err)
	}
	matrix := writeFile(t, "zboot.yaml", `kernels:
  - {name: zboot, arch: arm64, source: {file: {kernel: "`+zboot+`", modules: "`+arm64.Modules+`", config: "`+arm64.Config+`"}}}
checks: [btf]
`)
	res := vmrunnerCLI(t, "kernels", "inspect", "--cache-dir", filepath.Join(dir, "cache"), "--matrix", matrix, "zboot")
	if res.code != 0 || !strings.Contains(res.stdout, "gzip in EFI zboot") {
		t.Errorf("kernels inspect: exit %d, want the zboot format named", res.code)
	}
	out := filepath.Join(dir, "out")
	res = vmrunnerCLI(t, "run", "--cache-dir", filepath.Join(dir, "cache"), "--out", out, matrix)
	r, _ := readResults(t, out)
	if res.code != 0 || len(r.Results) == 0 || r.Results[0].Status != "pass" || r.Results[0].KernelRelease != arm64.Release {
		t.Errorf("run: exit %d, %+v; want btf to pass on %s", res.code, r.Results, arm64.Release)
	}
}
