package kernels

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jammyIndex is a Packages index shaped like jammy-updates' main: the GA
// 5.15 kernels, the 6.5 HWE kernel (version 6.5.0-45.45~22.04.1), signed
// images beside the unsigned ones, and a lowlatency flavour.
func jammyIndex(extra ...string) string {
	pkgs := append([]string{
		"linux-image-unsigned-5.15.0-89-generic=5.15.0-89.99",
		"linux-modules-5.15.0-89-generic=5.15.0-89.99",
		"linux-image-unsigned-5.15.0-91-generic=5.15.0-91.101",
		"linux-image-5.15.0-91-generic=5.15.0-91.101",
		"linux-modules-5.15.0-91-generic=5.15.0-91.101",
		"linux-modules-extra-5.15.0-91-generic=5.15.0-91.101",
		"linux-image-unsigned-6.5.0-45-generic=6.5.0-45.45~22.04.1",
		"linux-modules-6.5.0-45-generic=6.5.0-45.45~22.04.1",
		"linux-image-unsigned-6.5.0-45-lowlatency=6.5.0-45.45.1~22.04.1",
		"linux-modules-6.5.0-45-lowlatency=6.5.0-45.45.1~22.04.1",
		"linux-headers-6.9.0-1-generic=6.9.0-1.1",
	}, extra...)
	var b strings.Builder
	for i, p := range pkgs {
		name, ver, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\nDescription: x\nFilename: pool/main/l/linux/%s_%s.deb\nSize: %d\nSHA256: %064x\n\n",
			name, ver, name, ver, 100+i, i)
	}
	return b.String()
}

func TestPickUbuntu(t *testing.T) {
	tests := []struct {
		name    string
		index   string
		spec    UbuntuSpec
		flavour string
		want    []string // image, modules...
		err     string
	}{
		{"newest", jammyIndex(), UbuntuSpec{}, "generic",
			[]string{"linux-image-unsigned-6.5.0-45-generic", "linux-modules-6.5.0-45-generic"}, ""},
		{"GA series", jammyIndex(), UbuntuSpec{Version: "5.15"}, "generic",
			[]string{"linux-image-unsigned-5.15.0-91-generic", "linux-modules-5.15.0-91-generic"}, ""},
		{"HWE series", jammyIndex(), UbuntuSpec{Version: "6.5"}, "generic",
			[]string{"linux-image-unsigned-6.5.0-45-generic", "linux-modules-6.5.0-45-generic"}, ""},
		{"exact ABI", jammyIndex(), UbuntuSpec{ABI: "5.15.0-89"}, "generic",
			[]string{"linux-image-unsigned-5.15.0-89-generic", "linux-modules-5.15.0-89-generic"}, ""},
		{"extra", jammyIndex(), UbuntuSpec{Version: "5.15", Extra: true}, "generic",
			[]string{"linux-image-unsigned-5.15.0-91-generic", "linux-modules-5.15.0-91-generic", "linux-modules-extra-5.15.0-91-generic"}, ""},
		{"flavour", jammyIndex(), UbuntuSpec{}, "lowlatency",
			[]string{"linux-image-unsigned-6.5.0-45-lowlatency", "linux-modules-6.5.0-45-lowlatency"}, ""},
		{"series absent", jammyIndex(), UbuntuSpec{Version: "5.4"}, "generic", nil,
			"no linux-image-unsigned-5.4.*-generic in jammy-updates main/binary-amd64 on M"},
		{"ABI absent", jammyIndex(), UbuntuSpec{ABI: "5.15.0-1"}, "generic", nil,
			"no linux-image-unsigned-5.15.0-1-generic in"},
		{"no modules", jammyIndex("linux-image-unsigned-5.15.0-92-generic=5.15.0-92.102"), UbuntuSpec{Version: "5.15"}, "generic", nil,
			"linux-image-unsigned-5.15.0-92-generic has no linux-modules-5.15.0-92-generic (its modules) in jammy-updates"},
		{"no modules-extra", jammyIndex(), UbuntuSpec{Version: "6.5", Extra: true}, "generic", nil,
			"has no linux-modules-extra-6.5.0-45-generic"},
		{"modules of another upload", jammyIndex("linux-image-unsigned-5.15.0-93-generic=5.15.0-93.103", "linux-modules-5.15.0-93-generic=5.15.0-93.102"),
			UbuntuSpec{Version: "5.15"}, "generic", nil, "is 5.15.0-93.103 but linux-modules-5.15.0-93-generic is 5.15.0-93.102"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := pickUbuntu(strings.NewReader(tt.index), tt.spec, tt.flavour, "jammy-updates main/binary-amd64 on M")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range k.Parts {
				got = append(got, p.Package)
			}
			if k.Package.Package != tt.want[0] || strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %s over %v, want %v", k.Package.Package, got, tt.want)
			}
		})
	}
}

func TestUbuntuSpecValidate(t *testing.T) {
	for _, tt := range []struct {
		spec UbuntuSpec
		err  string
	}{
		{UbuntuSpec{Suite: "jammy-updates", Version: "5.15"}, ""},
		{UbuntuSpec{Suite: "focal", ABI: "5.4.0-42", Flavour: "generic", Mirror: "http://m/ubuntu"}, ""},
		{UbuntuSpec{}, "ubuntu.suite: expected an Ubuntu suite"},
		{UbuntuSpec{Suite: "../x"}, "ubuntu.suite"},
		{UbuntuSpec{Suite: "jammy", Version: "5.15", ABI: "5.15.0-91"}, "version and abi both given"},
		{UbuntuSpec{Suite: "jammy", Version: "5.15.0"}, "ubuntu.version: expected a version series like 5.15"},
		{UbuntuSpec{Suite: "jammy", ABI: "5.15.0"}, "ubuntu.abi: expected an ABI like 5.15.0-91"},
		{UbuntuSpec{Suite: "jammy", Flavour: "Generic/"}, "ubuntu.flavour"},
		{UbuntuSpec{Suite: "jammy", Ports: "ftp://x"}, "expected an http(s) URL"},
	} {
		err := tt.spec.Validate()
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err = %v, want %q", tt.spec, err, tt.err)
		}
	}
}

// TestResolveUbuntu resolves a kernel split into image and modules
// packages, as Ubuntu ships them, through the Debian archive code.
func TestResolveUbuntu(t *testing.T) {
	const rel = "5.15.0-91-generic"
	vmlinux := tinyELF(elf.EM_X86_64, linuxNote, pvhNote)
	img := bzImageOf(compressPayload(t, formatGzip, vmlinux), rel+" (buildd@lcy02-amd64-045) #101-Ubuntu SMP", true)
	files := kernelFiles(rel, img, "")
	image := pkg{Name: "linux-image-unsigned-" + rel, Version: "5.15.0-91.101", Arch: "amd64",
		Deb: buildDeb(t, "linux-image-unsigned-"+rel, "5.15.0-91.101", "amd64", "xz", files[:1])}
	modules := pkg{Name: "linux-modules-" + rel, Version: "5.15.0-91.101", Arch: "amd64",
		Deb: buildDeb(t, "linux-modules-"+rel, "5.15.0-91.101", "amd64", "xz", files[1:])}
	key := testKey(t, 0)
	m := newMirror(t)
	m.publish(t, "jammy-updates", []pkg{image, modules}, key)
	keyring := writeKeyring(t, key)

	cache, _ := OpenCache(t.TempDir())
	opts := Options{Cache: cache, Client: m.Client(), Logger: quietLogger()}
	spec := Spec{Ubuntu: &UbuntuSpec{Suite: "jammy-updates", Version: "5.15", Mirror: m.URL + "/debian/", Keyring: keyring}}
	k, err := Resolve(context.Background(), "jammy", spec, X86_64, opts)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != rel || k.Origin.Type != "ubuntu" || k.Origin.Package != image.Name || len(k.Origin.Files) != 2 ||
		k.SHA256 != combinedKey("deb", sha256Hex(image.Deb), sha256Hex(modules.Deb)) {
		t.Errorf("got %+v", k)
	}
	for _, p := range []string{k.Image, k.Config, filepath.Join(k.Modules, "modules.dep"), k.Uncompressed} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	// The lock pins both packages, and a pinned resolve boots them.
	lock := NewLock("h", map[string]Spec{"jammy": spec}, []*Kernel{k})
	opts.Pin = lock.Pin("jammy", X86_64, spec)
	pinned, err := Resolve(context.Background(), "jammy", spec, X86_64, opts)
	if err != nil || pinned.SHA256 != k.SHA256 || pinned.Release != rel {
		t.Errorf("pinned: %+v, %v", pinned, err)
	}

	// The Debian keyring does not vouch for Ubuntu's InRelease.
	other := Spec{Ubuntu: &UbuntuSpec{Suite: "jammy-updates", Mirror: m.URL + "/debian", Keyring: writeKeyring(t, testKey(t, 1))}}
	fresh, _ := OpenCache(t.TempDir())
	_, err = Resolve(context.Background(), "jammy", other, X86_64, Options{Cache: fresh, Client: m.Client(), Logger: quietLogger()})
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "/dists/jammy-updates/InRelease") {
		t.Errorf("wrong key: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(fresh.Dir, "kernels")); len(entries) != 0 {
		t.Errorf("cache holds %d kernels after a refusal", len(entries))
	}
}
