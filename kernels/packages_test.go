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
			name, ver, _ := strings.Cut(p, "=")
			fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\nDescription: x\n more\nFilename: pool/%d.deb\nSize: %d\nSHA256: %064x\n\n",
				name, ver, i, 100+i, i)
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
	sid := index(
		"linux-image-7.2.13+deb14-amd64-dbg=7.2.13-1",
		"linux-image-7.2.13+deb14-amd64=7.2.13-1",
		"linux-image-7.2.13+deb14-cloud-amd64=7.2.13-1",
		"linux-image-7.1.4+deb14-amd64=7.1.4-1",
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
		{sid, "amd64", ""}, // split into linux-binary-* and linux-modules-*
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
		if s := got.Package + " " + got.Version; s != tt.want {
			t.Errorf("flavour %s: got %s, want %s", tt.flavour, s, tt.want)
		}
		if got.Filename == "" || got.Size == 0 || len(got.SHA256) != 64 {
			t.Errorf("incomplete record %+v", got)
		}
	}
}
