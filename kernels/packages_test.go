package kernels

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNewestKernel(t *testing.T) {
	index := func(pkgs ...string) string {
		var b strings.Builder
		for i, p := range pkgs {
			p, deps, _ := strings.Cut(p, "|")
			name, ver, _ := strings.Cut(p, "=")
			if deps != "" {
				deps = "Depends: " + deps + "\n"
			}
			fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\n%sDescription: x\n more\nFilename: pool/%d.deb\nSize: %d\nSHA256: %064x\n\n",
				name, ver, deps, i, 100+i, i)
		}
		return b.String()
	}
	bookworm := index(
		"linux-image-amd64=6.1.176-1",
		"linux-image-6.1.0-47-amd64-unsigned=6.1.170-3",
		"linux-image-6.1.0-47-amd64-dbg=6.1.170-3",
		"linux-image-6.1.0-50-amd64-unsigned=6.1.176-1",
		"linux-image-6.1.0-47-rt-amd64-unsigned=6.1.170-3",
		"linux-image-6.1.0-50-rt-amd64-unsigned=6.1.199-1",
		"linux-image-6.1.0-50-cloud-amd64-unsigned=6.1.199-2",
		"linux-image-6.1.0-9-amd64-unsigned=6.1.27-1",
		"linux-headers-6.1.0-99-amd64=6.1.999-1",
	)
	trixie := index(
		"linux-image-6.12.107+deb13-amd64-unsigned=6.12.107-1",
		"linux-image-6.12.117+deb13-amd64-unsigned=6.12.117-1",
		"linux-image-6.12.117+deb13-amd64=6.12.117-1",
		"linux-image-6.12.117+deb13-arm64-16k-unsigned=6.12.117-1",
		"linux-image-6.12.117+deb13-arm64-unsigned=6.12.117-1",
	)
	// sid, as its index is: the image is a metapackage over the split
	// packages, and there is no -unsigned image.
	sid := index(
		"linux-image-7.2.13+deb14-amd64-dbg=7.2.13-1",
		"linux-image-7.2.13+deb14-amd64=7.2.13-1|dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)",
		"linux-binary-7.2.13+deb14-amd64=7.2.13-1|linux-base-7.2.13+deb14-amd64 (= 7.2.13-1)",
		"linux-binary-unsigned-7.2.13+deb14-amd64=7.2.13-1|linux-base-7.2.13+deb14-amd64 (= 7.2.13-1)",
		"linux-base-7.2.13+deb14-amd64=7.2.13-1",
		"linux-modules-7.2.13+deb14-amd64=7.2.13-1|kmod, linux-base-7.2.13+deb14-amd64 (= 7.2.13-1)",
		"linux-image-7.2.13+deb14-cloud-amd64=7.2.13-1|linux-base-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-cloud-amd64 (= 7.2.13-1)",
		"linux-binary-7.2.13+deb14-cloud-amd64=7.2.13-1",
		"linux-base-7.2.13+deb14-cloud-amd64=7.2.13-1",
		"linux-image-7.1.4+deb14-amd64=7.1.4-1|linux-binary-7.1.4+deb14-amd64 (= 7.1.4-1)",
	)
	bpo := index(
		"linux-image-6.12.95+deb12-amd64-unsigned=6.12.95-1~bpo12+1",
		"linux-image-6.12.95+deb12-amd64-unsigned-dbg=6.12.95-1~bpo12+1",
		"linux-image-6.12.9+deb12-amd64-unsigned=6.12.9-1~bpo12+2",
	)
	tests := []struct {
		index, flavour, want string
	}{
		{bookworm, "amd64", "linux-image-6.1.0-50-amd64-unsigned 6.1.176-1"},
		{bookworm, "rt-amd64", "linux-image-6.1.0-50-rt-amd64-unsigned 6.1.199-1"},
		{bookworm, "cloud-amd64", "linux-image-6.1.0-50-cloud-amd64-unsigned 6.1.199-2"},
		{bookworm, "arm64", ""},
		{trixie, "amd64", "linux-image-6.12.117+deb13-amd64-unsigned 6.12.117-1"},
		{trixie, "arm64", "linux-image-6.12.117+deb13-arm64-unsigned 6.12.117-1"},
		{trixie, "16k", ""},
		{sid, "amd64", "linux-image-7.2.13+deb14-amd64 7.2.13-1 [linux-binary-unsigned-7.2.13+deb14-amd64 linux-base-7.2.13+deb14-amd64 linux-modules-7.2.13+deb14-amd64]"},
		{sid, "cloud-amd64", ""}, // its linux-modules-* is missing from this index
		{sid, "rt-amd64", ""},
		{bpo, "amd64", "linux-image-6.12.95+deb12-amd64-unsigned 6.12.95-1~bpo12+1"},
		{"", "amd64", ""},
	}
	for _, tt := range tests {
		got, err := newestKernel(strings.NewReader(tt.index), tt.flavour)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("flavour %s: got %+v, %v; want ErrNotFound", tt.flavour, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("flavour %s: %v", tt.flavour, err)
			continue
		}
		s := got.Package.Package + " " + got.Package.Version
		if len(got.Parts) > 0 {
			var parts []string
			for _, p := range got.Parts {
				parts = append(parts, p.Package)
			}
			s += " [" + strings.Join(parts, " ") + "]"
		}
		if s != tt.want {
			t.Errorf("flavour %s: got %s, want %s", tt.flavour, s, tt.want)
		}
		for _, p := range append(got.Parts, got.Package) {
			if p.Filename == "" || p.Size == 0 || len(p.SHA256) != 64 {
				t.Errorf("incomplete record %+v", p)
			}
		}
	}
}
