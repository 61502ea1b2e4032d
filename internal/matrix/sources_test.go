package matrix

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

// TestRFD037Matrix parses matrices/rfd037.yaml (it cannot be resolved
// without internet access) and checks that every version of the RFD has a
// real source on each arch, with the sources the issue asks for.
func TestRFD037Matrix(t *testing.T) {
	m, err := LoadMatrix("../../matrices/rfd037.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range m.Targets() {
		src := tg.Kernel.Source
		var s string
		switch {
		case src.Mainline != nil:
			s = "mainline " + src.Mainline.Version
		case src.OCI != "":
			s = "oci " + src.OCI
		case src.Debian != nil:
			s = "debian " + src.Debian.Suite
		default:
			t.Errorf("%s: unexpected source %+v", tg.Label(), src)
		}
		got = append(got, tg.Label()+": "+s)
	}
	want := []string{
		"rhel-4.18/x86_64: oci quay.io/lvh-images/kernel-images:rhel8.10-main",
		"mainline-4.18/x86_64: mainline v4.18", "mainline-4.18/arm64: mainline v4.18",
		"mainline-5.8/x86_64: mainline v5.8", "mainline-5.8/arm64: mainline v5.8",
		"mainline-5.15/x86_64: mainline v5.15", "mainline-5.15/arm64: mainline v5.15",
		"ci-5.15/x86_64: oci ghcr.io/cilium/ci-kernels:5.15",
		"debian-6.1/x86_64: debian bookworm", "debian-6.1/arm64: debian bookworm",
		"ci-6.1/x86_64: oci ghcr.io/cilium/ci-kernels:6.1",
		"mainline-6.5/x86_64: mainline v6.5", "mainline-6.5/arm64: mainline v6.5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rfd037 targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every version of the RFD on both arches; the tags are the real ones.
	for _, v := range []string{"4.18", "5.8", "5.15", "6.1", "6.5"} {
		for _, a := range []string{"x86_64", "arm64"} {
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, v+"/"+a+":") }) {
				t.Errorf("no %s kernel for %s", v, a)
			}
		}
	}
	for _, s := range got {
		if strings.Contains(s, "lvh-images") && !strings.HasSuffix(s, "-main") {
			t.Errorf("%s: little-vm-helper tags are <ver>-main or <ver>-<date>", s)
		}
	}
}

func TestParseSources(t *testing.T) {
	const head = "checks: [btf]\nkernels:\n"
	for _, tc := range []struct {
		name, yaml string
		want       kernels.Spec
		err        string
	}{
		{"oci", `  - {name: a, source: {oci: "ghcr.io/cilium/ci-kernels:6.1"}}`, kernels.Spec{OCI: "ghcr.io/cilium/ci-kernels:6.1"}, ""},
		{"mainline short", `  - {name: a, source: {ubuntu-mainline: v6.5}}`, kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v6.5"}}, ""},
		{"mainline url", `  - {name: a, source: {ubuntu-mainline: {version: v5.15.120, url: "http://m/mainline"}}}`,
			kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v5.15.120", URL: "http://m/mainline"}}, ""},
		{"btf option", `  - {name: a, source: {oci: "ghcr.io/cilium/ci-kernels:6.1", btf: {file: btf/6.1.btf.tar.xz}}}`,
			kernels.Spec{OCI: "ghcr.io/cilium/ci-kernels:6.1", BTF: &kernels.BTFSpec{File: "/m/btf/6.1.btf.tar.xz"}}, ""},
		{"btf alone is no source", `  - {name: a, source: {btf: {file: x.btf}}}`, kernels.Spec{}, `kernels[0].source: expected one of: debian, oci, ubuntu-mainline, deb, file, build`},
		{"btf url without sha256", `  - {name: a, source: {oci: x, btf: {url: "http://h/x.btf"}}}`, kernels.Spec{}, `btf: sha256 of http://h/x.btf: expected 64 hex digits`},
		{"mainline keyring relative", `  - {name: a, source: {ubuntu-mainline: {version: v4.18, keyring: keys/kernel-ppa.gpg}}}`,
			kernels.Spec{Mainline: &kernels.MainlineSpec{Version: "v4.18", Keyring: "/m/keys/kernel-ppa.gpg"}}, ""},
		{"deb url", `  - {name: a, source: {deb: {url: "http://x/k.deb", sha256: ` + strings.Repeat("ab", 32) + `}}}`,
			kernels.Spec{Deb: &kernels.DebSpec{URL: "http://x/k.deb", SHA256: strings.Repeat("ab", 32)}}, ""},
		{"deb files relative", `  - {name: a, source: {deb: {files: [img.deb, /abs/mod.deb]}}}`,
			kernels.Spec{Deb: &kernels.DebSpec{Files: []string{"/m/img.deb", "/abs/mod.deb"}}}, ""},
		{"file relative", `  - {name: a, source: {file: {kernel: linux/arch/x86/boot/bzImage, modules: mods/lib/modules/6.1.0, config: linux/.config}}}`,
			kernels.Spec{File: &kernels.FileSpec{Kernel: "/m/linux/arch/x86/boot/bzImage", Modules: "/m/mods/lib/modules/6.1.0", Config: "/m/linux/.config"}}, ""},
		{"build", `  - {name: a, source: {build: {tree: linux, config: [bpf, ./extra.config]}}}`,
			kernels.Spec{Build: &kernels.BuildSpec{Tree: "/m/linux", Config: []string{"bpf", "/m/extra.config"}}}, ""},
		{"build pahole", `  - {name: a, source: {build: {tree: linux, config: [bpf, nobtf, dwarf], pahole: true}}}`,
			kernels.Spec{Build: &kernels.BuildSpec{Tree: "/m/linux", Config: []string{"bpf", "nobtf", "dwarf"}, Pahole: true}}, ""},
		{"build pahole with own btf", `  - {name: a, source: {build: {tree: linux, config: [bpf, btf, dwarf], pahole: true}}}`, kernels.Spec{},
			`m.yaml:3:23: kernels[0].source.build.pahole: the fragments include btf (the default ones do): the kernel would have BTF of its own; list config: with nobtf and dwarf`},
		{"build pahole default fragments", `  - {name: a, source: {build: {tree: linux, pahole: true}}}`, kernels.Spec{}, `build.pahole: the fragments include btf`},
		{"build pahole and btf", `  - {name: a, source: {build: {tree: linux, config: [nobtf, dwarf], pahole: true}, btf: {file: k.btf}}}`, kernels.Spec{},
			`build.pahole and btf: both give the kernel's BTF; keep one`},
		{"build pahole not a bool", `  - {name: a, source: {build: {tree: linux, config: [nobtf, dwarf], pahole: sure}}}`, kernels.Spec{}, `m.yaml:3:77: kernels[0].source.build.pahole: expected true or false, got "sure"`},
		{"mainline bad version", `  - {name: a, source: {ubuntu-mainline: "6.5"}}`, kernels.Spec{}, `m.yaml:3:41: kernels[0].source.ubuntu-mainline: expected a version like v6.5`},
		{"mainline typo", `  - {name: a, source: {ubuntu-mainline: {version: v6.5, ulr: x}}}`, kernels.Spec{}, `unknown key "ulr"; allowed keys: version, url, keyring`},
		{"deb without sha256", `  - {name: a, source: {deb: {url: "http://x/k.deb"}}}`, kernels.Spec{}, `m.yaml:3:23: kernels[0].source.deb: sha256 of http://x/k.deb: expected 64 hex digits`},
		{"file without kernel", `  - {name: a, source: {file: {modules: m}}}`, kernels.Spec{}, `kernels[0].source.file: missing kernel`},
		{"two kinds", `  - {name: a, source: {oci: x, file: {kernel: k}}}`, kernels.Spec{}, `has oci and file; expected exactly one`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMatrix("/m/m.yaml", []byte(head+tc.yaml+"\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Kernels[0].Source; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("source = %+v, want %+v", got, tc.want)
			}
		})
	}
}
