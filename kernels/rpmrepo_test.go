package kernels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// primaryXML is a primary.xml as createrepo_c writes it, with the packages
// given as name=version-release.arch.
func primaryXML(pkgs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">
`, len(pkgs))
	for i, p := range pkgs {
		name, rest, _ := strings.Cut(p, "=")
		evr, arch, _ := strings.Cut(rest[:strings.LastIndex(rest, ".")]+"|"+rest[strings.LastIndex(rest, ".")+1:], "|")
		ver, rel, _ := strings.Cut(evr, "-")
		fmt.Fprintf(&b, `<package type="rpm">
  <name>%s</name>
  <arch>%s</arch>
  <version epoch="0" ver="%s" rel="%s"/>
  <checksum type="sha256" pkgid="YES">%064x</checksum>
  <summary>x</summary>
  <location href="Packages/%s-%s.%s.rpm"/>
  <size package="%d" installed="1" archive="1"/>
  <format><rpm:license>GPLv2</rpm:license></format>
</package>
`, name, arch, ver, rel, i+1, name, evr, arch, 1000+i)
	}
	b.WriteString("</metadata>\n")
	return b.String()
}

func TestPickRPM(t *testing.T) {
	el9 := primaryXML(
		"kernel-core=5.14.0-427.13.1.el9_4.x86_64",
		"kernel-modules-core=5.14.0-427.13.1.el9_4.x86_64",
		"kernel-core=5.14.0-503.11.1.el9_5.x86_64",
		"kernel-modules-core=5.14.0-503.11.1.el9_5.x86_64",
		"kernel-core=5.14.0-503.11.1.el9_5.aarch64",
		"kernel-core=5.14.0-70.13.1.el9_0.x86_64", // rpmvercmp: 70 < 427 < 503
		"kernel-modules-core=5.14.0-70.13.1.el9_0.x86_64",
		"kernel-headers=5.14.0-600.el9.x86_64",
		"bash=5.1.8-9.el9.x86_64",
	)
	tests := []struct {
		name string
		spec RPMSpec
		arch string
		want []string
		err  string
	}{
		{"newest", RPMSpec{Package: "kernel-core", Modules: []string{"kernel-modules-core"}}, "x86_64",
			[]string{"kernel-core-5.14.0-503.11.1.el9_5", "kernel-modules-core-5.14.0-503.11.1.el9_5"}, ""},
		{"version", RPMSpec{Package: "kernel-core", Modules: []string{"kernel-modules-core"}, Version: "5.14.0-427"}, "x86_64",
			[]string{"kernel-core-5.14.0-427.13.1.el9_4", "kernel-modules-core-5.14.0-427.13.1.el9_4"}, ""},
		{"no modules of that build", RPMSpec{Package: "kernel-core", Modules: []string{"kernel-modules-core"}}, "aarch64", nil,
			"kernel-core-5.14.0-503.11.1.el9_5.aarch64 has no kernel-modules-core of the same build in R"},
		{"version absent", RPMSpec{Package: "kernel-core", Version: "4.18.0"}, "x86_64", nil, "no kernel-core 4.18.0* for x86_64 in R"},
		{"version is no prefix of a number", RPMSpec{Package: "kernel-core", Version: "5.14.0-4"}, "x86_64", nil, "no kernel-core 5.14.0-4* for x86_64"},
		{"package absent", RPMSpec{Package: "kernel-default"}, "x86_64", nil, "no kernel-default for x86_64 in R"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := append([]string{tt.spec.Package}, tt.spec.Modules...)
			pkgs, err := scanPrimary(strings.NewReader(el9), func(name, arch string) bool {
				for _, n := range names {
					if n == name {
						return true
					}
				}
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := pickRPM(pkgs, tt.spec, tt.arch, "R")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names2 []string
			for _, p := range got {
				names2 = append(names2, p.Name+"-"+p.evr())
				if p.Arch != tt.arch || p.SumType != "sha256" || len(p.Sum) != 64 || !strings.HasPrefix(p.Location, "Packages/") {
					t.Errorf("package %+v", p)
				}
			}
			if strings.Join(names2, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", names2, tt.want)
			}
		})
	}
}

func TestRPMSpecValidate(t *testing.T) {
	for _, tt := range []struct {
		spec RPMSpec
		err  string
	}{
		{RPMSpec{Distro: "alma-9"}, ""},
		{RPMSpec{Distro: "amazon-2023", Version: "6.1"}, ""},
		{RPMSpec{Repo: "http://127.0.0.1:1/el9", Key: "key.asc"}, ""},
		{RPMSpec{Distro: "alma-7"}, `rpm.distro: unknown distro "alma-7"; known: alma-10, alma-8, alma-9,`},
		{RPMSpec{}, "rpm: missing repo"},
		{RPMSpec{Repo: "ftp://x"}, "rpm.repo: expected an http(s) URL"},
		{RPMSpec{Repo: "https://x/el9"}, "rpm: missing key"},
		{RPMSpec{Repo: "https://x/el9", KeyURL: "http://x/key"}, "rpm.key_url: expected an https URL"},
		{RPMSpec{Repo: "https://x/el9", Key: "k", Package: "kernel core"}, `bad package name "kernel core"`},
	} {
		err := tt.spec.Validate()
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err = %v, want %q", tt.spec, err, tt.err)
		}
	}
}

func TestRPMFamilies(t *testing.T) {
	for _, name := range RPMDistros() {
		f := rpmFamilies[name]
		if !strings.HasPrefix(f.Repo, "https://") || !strings.Contains(f.Repo, "$basearch") && !strings.Contains(name, "opensuse") ||
			!strings.HasPrefix(f.KeyURL, "https://") || f.Package == "" {
			t.Errorf("%s: %+v", name, f)
		}
	}
}

func TestIsLocalPath(t *testing.T) {
	for p, want := range map[string]bool{"Packages/k.rpm": true, "repodata/x-primary.xml.gz": true, "../x": false, "/etc/passwd": false,
		"a/../../b": false, "": false, "a//b": false} {
		if isLocalPath(p) != want {
			t.Errorf("isLocalPath(%q) = %v", p, !want)
		}
	}
}

// TestLookupRPM reads repomd.xml and primary through a mirror.list, as
// Amazon Linux's repositories are named, and refuses a primary that is
// not what repomd says.
func TestLookupRPM(t *testing.T) {
	primary := gzipped([]byte(primaryXML(
		"kernel=4.14.355-280.714.amzn2.x86_64",
		"kernel=4.14.352-268.569.amzn2.x86_64",
		"kernel=4.14.355-280.714.amzn2.aarch64",
	)))
	m := newMirror(t)
	repomd := func(sum string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision>
<data type="filelists"><checksum type="sha256">` + strings.Repeat("0", 64) + `</checksum><location href="repodata/f-filelists.xml.gz"/></data>
<data type="primary"><checksum type="sha256">` + sum + `</checksum><open-checksum type="sha256">x</open-checksum>
<location href="repodata/p-primary.xml.gz"/><size>` + fmt.Sprint(len(primary)) + `</size></data>
</repomd>`)
	}
	m.put("/2/core/2.0/x86_64/abc/repodata/repomd.xml", repomd(sha256Hex(primary)))
	m.put("/2/core/2.0/x86_64/abc/repodata/p-primary.xml.gz", primary)
	m.put("/2/core/latest/x86_64/mirror.list", []byte(m.URL+"/2/core/2.0/x86_64/abc/\n"+m.URL+"/elsewhere/\n"))
	f := &fetcher{client: m.Client(), log: quietLogger()}
	spec := RPMSpec{Repo: m.URL + "/2/core/latest/x86_64/mirror.list", Package: "kernel"}
	res, err := f.lookupRPM(context.Background(), spec, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != m.URL+"/2/core/2.0/x86_64/abc" || len(res.Packages) != 1 || res.Packages[0].evr() != "4.14.355-280.714.amzn2" {
		t.Errorf("got %+v", res)
	}
	if o := res.origin(); o.Type != "rpm" || o.URL != res.Base+"/Packages/kernel-4.14.355-280.714.amzn2.x86_64.rpm" || len(o.Files) != 1 {
		t.Errorf("origin %+v", o)
	}

	m.put("/2/core/2.0/x86_64/abc/repodata/repomd.xml", repomd(sha256Hex([]byte("other"))))
	_, err = f.lookupRPM(context.Background(), spec, "x86_64")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "/abc/repodata/p-primary.xml.gz") {
		t.Errorf("tampered primary: %v", err)
	}
}

// TestRPMKeyring reads the key from a file or fetches it over HTTPS, and
// refuses what holds no key.
func TestRPMKeyring(t *testing.T) {
	var armored strings.Builder
	w, err := armor.Encode(&armored, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := testKey(t, 0).Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/RPM-GPG-KEY" {
			io.WriteString(w, armored.String())
			return
		}
		io.WriteString(w, "<html>not a key</html>")
	}))
	defer srv.Close()
	f := &fetcher{client: srv.Client(), log: quietLogger()}
	ctx := context.Background()

	kr, where, err := rpmKeyring(ctx, f, RPMSpec{KeyURL: srv.URL + "/RPM-GPG-KEY"})
	if err != nil || len(kr) != 1 || where != srv.URL+"/RPM-GPG-KEY" ||
		kr[0].PrimaryKey.KeyId != testKey(t, 0).PrimaryKey.KeyId {
		t.Errorf("key_url: %v %q %v", kr, where, err)
	}
	kr, _, err = rpmKeyring(ctx, f, RPMSpec{Key: writeKeyring(t, testKey(t, 1))})
	if err != nil || len(kr) != 1 || kr[0].PrimaryKey.KeyId != testKey(t, 1).PrimaryKey.KeyId {
		t.Errorf("key file: %v %v", kr, err)
	}
	_, _, err = rpmKeyring(ctx, f, RPMSpec{KeyURL: srv.URL + "/page"})
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "read key "+srv.URL+"/page: no OpenPGP key in it") {
		t.Errorf("not a key: %v", err)
	}
}
