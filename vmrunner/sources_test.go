package vmrunner

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

func TestRFD037Matrix(t *testing.T) {
	m, err := LoadMatrix("../matrices/rfd037.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, tg := range m.Targets() {
		src := tg.Kernel.Source
		switch {
		case src.Mainline != nil:
			got["ubuntu-mainline"] = append(got["ubuntu-mainline"], src.Mainline.Version+"/"+string(tg.Arch))
		case src.OCI != "":
			got["oci"] = append(got["oci"], strings.TrimPrefix(src.OCI, "ghcr.io/cilium/ci-kernels:")+"/"+string(tg.Arch))
		default:
			t.Errorf("%s: unexpected source %+v", tg.Label(), src)
		}
	}
	var wantMainline, wantOCI []string
	for _, v := range []string{"4.18", "5.8", "5.15", "6.1", "6.5"} {
		for _, a := range []string{"x86_64", "arm64"} {
			wantMainline = append(wantMainline, "v"+v+"/"+a)
			wantOCI = append(wantOCI, v+"/"+a)
		}
	}
	if !reflect.DeepEqual(got["ubuntu-mainline"], wantMainline) || !reflect.DeepEqual(got["oci"], wantOCI) {
		t.Errorf("rfd037 targets = %v, want mainline %v and oci %v", got, wantMainline, wantOCI)
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
