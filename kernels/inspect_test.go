package kernels

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	vmlinux := tinyELF(elf.EM_X86_64, linuxNote, pvhNote)
	tests := []struct {
		name    string
		data    []byte
		want    Info
		wantErr error
		errMsg  string
	}{
		{name: "bzImage", data: bzImageOf(compressPayload(t, formatXZ, vmlinux), "6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP", true),
			want: Info{Format: "bzImage", Arch: X86_64, Version: "6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP", Release: "6.1.0-50-amd64"}},
		{name: "32-bit bzImage", data: bzImageOf(compressPayload(t, formatGzip, vmlinux), "4.19.0-27-686", false),
			want: Info{Format: "bzImage", Arch: "i386", Version: "4.19.0-27-686", Release: "4.19.0-27-686"}},
		{name: "ELF with PVH", data: vmlinux, want: Info{Format: "elf", Arch: X86_64, PVH: true}},
		{name: "ELF without PVH", data: tinyELF(elf.EM_X86_64, linuxNote), want: Info{Format: "elf", Arch: X86_64}},
		{name: "arm64 ELF", data: tinyELF(elf.EM_AARCH64, linuxNote), want: Info{Format: "elf", Arch: ARM64}},
		{name: "arm64 Image", data: arm64Image(), want: Info{Format: "arm64-image", Arch: ARM64}},
		{name: "gzip'd arm64 Image", data: gzipped(arm64Image()), want: Info{Format: "gzip", Arch: ARM64}},
		{name: "ELF that is no kernel", data: tinyELF(elf.EM_X86_64, elfNote("GNU", 3, []byte("buildid!"))),
			wantErr: ErrNotAKernel, errMsg: "without Linux kernel notes"},
		{name: "garbage", data: []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3}, wantErr: ErrNotAKernel, errMsg: "de ad be ef"},
		{name: "text", data: []byte("<html>404</html>"), wantErr: ErrNotAKernel, errMsg: "<html>"},
		{name: "gzip'd text", data: gzipped([]byte("hello")), wantErr: ErrNotAKernel, errMsg: "gzip-compressed text"},
		{name: "empty", data: nil, wantErr: ErrNotAKernel, errMsg: "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vmlinuz")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Inspect(path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrBadInput) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.errMsg) {
					t.Errorf("error %q should name %s and say %q", err, path, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Inspect = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckArch(t *testing.T) {
	dir := t.TempDir()
	arm := filepath.Join(dir, "arm")
	os.WriteFile(arm, gzipped(arm64Image()), 0o644)
	x86 := filepath.Join(dir, "x86")
	os.WriteFile(x86, tinyELF(elf.EM_X86_64, pvhNote), 0o644)
	for _, tc := range []struct {
		path string
		arch Arch
		want error
	}{
		{arm, ARM64, nil}, {arm, X86_64, ErrWrongArch}, {x86, X86_64, nil}, {x86, ARM64, ErrWrongArch},
	} {
		_, err := checkArch(tc.path, "the-kernel", tc.arch)
		if !errors.Is(err, tc.want) {
			t.Errorf("checkArch(%s, %s) = %v, want %v", tc.path, tc.arch, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "the-kernel") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

// TestExtractPayload decompresses every payload format Linux builds
// with and checks the ELF comes out whole.
func TestExtractPayload(t *testing.T) {
	vmlinux := tinyELF(elf.EM_X86_64, linuxNote, pvhNote)
	for _, format := range []string{formatGzip, formatXZ, formatLZMA, formatZstd, formatLZ4} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "bzImage")
			os.WriteFile(src, bzImageOf(compressPayload(t, format, vmlinux), "6.1.0", true), 0o644)
			dst := filepath.Join(dir, "vmlinux")
			pvh, err := extractVmlinux(src, dst, "bzImage")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if !pvh || string(got) != string(vmlinux) {
				t.Errorf("pvh=%v, %d bytes out, want %d", pvh, len(got), len(vmlinux))
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		dir := t.TempDir()
		payload := compressPayload(t, formatXZ, vmlinux)
		payload = append(payload[:len(payload)/2], payload[len(payload)-4:]...)
		src := filepath.Join(dir, "bzImage")
		os.WriteFile(src, bzImageOf(payload, "6.1.0", true), 0o644)
		if _, err := extractVmlinux(src, filepath.Join(dir, "vmlinux"), "bzImage"); err == nil {
			t.Error("a truncated payload decompressed")
		}
		if _, err := os.Stat(filepath.Join(dir, "vmlinux")); err == nil {
			t.Error("a truncated payload left a vmlinux")
		}
	})
}
