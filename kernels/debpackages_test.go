package kernels

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A Packages index in Debian's format: a server, its libraries (Section:
// libs, zlib1g among them), a program it depends on and a library behind
// a skipped one.
const closureIndex = `Package: server
Version: 1.0-1
Section: database
Depends: libc6 (>= 2.34), zlib1g (>= 1:1.1.4), debconf (>= 0.5) | debconf-2.0, libbig1, libssl3t64 | libssl3, perl:any
Filename: pool/main/s/server/server_1.0-1_amd64.deb
Size: 100
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
Description: a server
 with a continuation line: Depends: nothing

Package: libc6
Version: 2.36-9
Section: libs
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9_amd64.deb
Size: 200
SHA256: 2222222222222222222222222222222222222222222222222222222222222222

Package: libc6
Version: 2.35-1
Section: libs
Filename: pool/main/g/glibc/libc6_2.35-1_amd64.deb
Size: 201
SHA256: 2222222222222222222222222222222222222222222222222222222222222223

Package: libgcc-s1
Version: 12.2.0-14
Section: libs
Pre-Depends: libc6 (>= 2.35)
Filename: pool/main/g/gcc-12/libgcc-s1_12.2.0-14_amd64.deb
Size: 300
SHA256: 3333333333333333333333333333333333333333333333333333333333333333

Package: zlib1g
Version: 1:1.2.13.dfsg-1
Section: libs
Filename: pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb
Size: 400
SHA256: 4444444444444444444444444444444444444444444444444444444444444444

Package: debconf
Version: 1.5.82
Section: admin
Depends: perl-base
Filename: pool/main/d/debconf/debconf_1.5.82_all.deb
Size: 500
SHA256: 5555555555555555555555555555555555555555555555555555555555555555

Package: libbig1
Version: 1.0
Section: libs
Depends: libhidden1
Filename: pool/main/b/big/libbig1_1.0_amd64.deb
Size: 600
SHA256: 6666666666666666666666666666666666666666666666666666666666666666

Package: libhidden1
Version: 1.0
Section: libs
Filename: pool/main/h/hidden/libhidden1_1.0_amd64.deb
Size: 700
SHA256: 7777777777777777777777777777777777777777777777777777777777777777

Package: libssl3
Version: 3.0.11-1
Section: libs
Filename: pool/main/o/openssl/libssl3_3.0.11-1_amd64.deb
Size: 800
SHA256: 8888888888888888888888888888888888888888888888888888888888888888
`

func TestPackageClosure(t *testing.T) {
	tests := []struct {
		name  string
		spec  PackagesSpec
		want  []string
		error error
	}{
		{
			name: "libraries followed, programs not",
			spec: PackagesSpec{Packages: []string{"server"}},
			// libssl3t64 is not in the index: the next alternative is taken.
			want: []string{"server", "libc6", "zlib1g", "libbig1", "libssl3", "libgcc-s1", "libhidden1"},
		},
		{
			name: "skipped and what only it needs",
			spec: PackagesSpec{Packages: []string{"server"}, Skip: []string{"libbig*"}},
			want: []string{"server", "libc6", "zlib1g", "libssl3", "libgcc-s1"},
		},
		{
			name: "a program asked for by name",
			spec: PackagesSpec{Packages: []string{"server", "debconf"}},
			want: []string{"server", "debconf", "libc6", "zlib1g", "libbig1", "libssl3", "libgcc-s1", "libhidden1"},
		},
		{
			name:  "missing root",
			spec:  PackagesSpec{Packages: []string{"nosuch"}},
			error: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := packageClosure(strings.NewReader(closureIndex), tt.spec, "bookworm main/binary-amd64")
			if tt.error != nil {
				if !errors.Is(err, tt.error) {
					t.Fatalf("error %v, want %v", err, tt.error)
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
			if !slices.Equal(got, tt.want) {
				t.Errorf("closure %v, want %v", got, tt.want)
			}
			if k.Package.Package != tt.spec.Packages[0] {
				t.Errorf("package %s, want the first root", k.Package.Package)
			}
			for _, p := range k.Parts {
				if p.Package == "libc6" && (p.Version != "2.36-9" || p.Size != 200) {
					t.Errorf("libc6 %s (%d bytes), want the newest, 2.36-9", p.Version, p.Size)
				}
			}
		})
	}
}

func TestScanIndexRefuses(t *testing.T) {
	for name, index := range map[string]string{
		"no sha256":   "Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 1\n",
		"bad size":    "Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: x\nSHA256: 11\n",
		"escaping":    "Package: a\nVersion: 1\nFilename: ../a.deb\nSize: 1\nSHA256: 11\n",
		"bad version": "Package: a\nVersion: é\nFilename: pool/a.deb\nSize: 1\nSHA256: 11\n",
	} {
		if _, err := scanIndex(strings.NewReader(index)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDepName(t *testing.T) {
	for in, want := range map[string]string{
		" libc6 (>= 2.34)":  "libc6",
		"perl:any":          "perl",
		"libssl3":           "libssl3",
		"foo [amd64]":       "foo",
		"bar:amd64 (= 1.0)": "bar",
	} {
		if got := depName(in); got != want {
			t.Errorf("depName(%q) = %q, want %q", in, got, want)
		}
	}
}
