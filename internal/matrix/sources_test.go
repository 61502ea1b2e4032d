package matrix

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

// TestRFD037Matrix parses matrices/rfd037.yaml (it cannot be resolved
// without internet access) and checks that every version of the RFD is the
// distro kernel it stands for, on each arch.
func TestRFD037Matrix(t *testing.T) {
	got := matrixSources(t, "../../matrices/rfd037.yaml")
	want := []string{
		"rhel8-4.18/x86_64: rpm alma-8 4.18.0", "rhel8-4.18/arm64: rpm alma-8 4.18.0",
		"ubuntu-5.8/x86_64: ubuntu focal-updates 5.8", "ubuntu-5.8/arm64: ubuntu focal-updates 5.8",
		"ubuntu-5.15/x86_64: ubuntu jammy-updates 5.15", "ubuntu-5.15/arm64: ubuntu jammy-updates 5.15",
		"debian-6.1/x86_64: debian bookworm", "debian-6.1/arm64: debian bookworm",
		"ubuntu-6.5/x86_64: ubuntu jammy-updates 6.5", "ubuntu-6.5/arm64: ubuntu jammy-updates 6.5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rfd037 targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFleetMatrix parses matrices/fleet.yaml: every kernel the issue names,
// on both arches, each from its distro's archive and with a comment saying
// which quirk it stands for.
func TestFleetMatrix(t *testing.T) {
	got := matrixSources(t, "../../matrices/fleet.yaml")
	for _, want := range []string{
		"ubuntu-20.04-5.4/%s: ubuntu focal-updates 5.4", "ubuntu-20.04-hwe-5.8/%s: ubuntu focal-updates 5.8",
		"ubuntu-22.04-5.15/%s: ubuntu jammy-updates 5.15", "ubuntu-22.04-hwe-6.5/%s: ubuntu jammy-updates 6.5",
		"ubuntu-24.04-6.8/%s: ubuntu noble-updates 6.8",
		"el8-4.18/%s: rpm alma-8 4.18.0", "el9-5.14/%s: rpm rocky-9 5.14.0",
		"amzn2-4.14/%s: rpm amazon-2 4.14", "amzn2-5.10/%s: rpm amazon-2-kernel-5.10 5.10", "al2023-6.1/%s: rpm amazon-2023 6.1",
		"leap-15.6-6.4/%s: rpm opensuse-leap-15.6 6.4.0",
		"debian-11-5.10/%s: debian bullseye", "debian-12-6.1/%s: debian bookworm", "debian-13-6.12/%s: debian trixie",
	} {
		for _, a := range []string{"x86_64", "arm64"} {
			if w := strings.Replace(want, "%s", a, 1); !slices.Contains(got, w) {
				t.Errorf("fleet.yaml has no %q", w)
			}
		}
	}
	if len(got) != 28 {
		t.Errorf("fleet.yaml has %d targets, want 28:\n%s", len(got), strings.Join(got, "\n"))
	}
	data, err := os.ReadFile("../../matrices/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  - {name:") && (i == 0 || !strings.HasPrefix(lines[i-1], "  #")) {
			t.Errorf("fleet.yaml:%d: kernel without a comment saying which quirk it stands for", i+1)
		}
	}
}

// matrixSources lists a matrix file's targets with their sources.
func matrixSources(t *testing.T, path string) []string {
	t.Helper()
	m, err := LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range m.Targets() {
		src := tg.Kernel.Source
		var s string
		switch {
		case src.Ubuntu != nil:
			s = "ubuntu " + src.Ubuntu.Suite + " " + src.Ubuntu.Version
		case src.RPM != nil:
			s = "rpm " + src.RPM.Distro + " " + src.RPM.Version
		case src.Debian != nil:
			s = "debian " + src.Debian.Suite
		default:
			t.Errorf("%s: unexpected source %+v", tg.Label(), src)
		}
		got = append(got, tg.Label()+": "+s)
	}
	return got
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
		{"ubuntu", `  - {name: a, source: {ubuntu: {suite: jammy-updates, version: "6.5", keyring: keys/ubuntu.gpg}}}`,
			kernels.Spec{Ubuntu: &kernels.UbuntuSpec{Suite: "jammy-updates", Version: "6.5", Keyring: "/m/keys/ubuntu.gpg"}}, ""},
		{"ubuntu version and abi", `  - {name: a, source: {ubuntu: {suite: jammy, version: "5.15", abi: 5.15.0-91}}}`, kernels.Spec{},
			`kernels[0].source.ubuntu: version and abi both given; keep one`},
		{"rpm distro", `  - {name: a, source: {rpm: {distro: alma-8, version: "4.18.0", key: k.asc}}}`,
			kernels.Spec{RPM: &kernels.RPMSpec{Distro: "alma-8", Version: "4.18.0", Key: "/m/k.asc"}}, ""},
		{"rpm unknown distro", `  - {name: a, source: {rpm: {distro: rhel-8}}}`, kernels.Spec{}, `kernels[0].source.rpm.distro: unknown distro "rhel-8"; known: alma-10`},
		{"btf alone is no source", `  - {name: a, source: {btf: {file: x.btf}}}`, kernels.Spec{}, `kernels[0].source: expected one of: debian, ubuntu, rpm, oci, ubuntu-mainline, deb, file, build`},
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
