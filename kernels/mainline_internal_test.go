package kernels

import (
	"maps"
	"slices"
	"testing"
)

// The CHECKSUMS of kernel.ubuntu.com/mainline/v6.13/amd64/, as published
// (quoted in a public write-up of installing that build).
const realChecksums = `# Checksums, check with the command below:
#     shasum -c CHECKSUMS
#
# Checksums-Sha1:
ac4ce3e74c61227c71e3654959aa35d9393a5e08  linux-headers-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
1b9281268ec2741f0f0648c5eed8a2670fbbc2c1  linux-headers-6.13.0-061300_6.13.0-061300.202501302155_all.deb
53ab2cbc69fdc165ecbb7f2329ed30152596c848  linux-image-unsigned-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
c85aae557cc4802def43c3621b1a028594bab05d  linux-modules-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
#
# Checksums-Sha256:
298da8f03ed5e05fb6d9fef63ab40f0796e005bdd3ce5df123cdd7c01fa7bbf1  linux-headers-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
11019230e7b7ab93db36f292d69d372704b77e592a7cc347c725501a4fdfa4a0  linux-headers-6.13.0-061300_6.13.0-061300.202501302155_all.deb
cc174bc57b858f996855cf8c4d6e71c353ded3ed32cd55c26780b62435778806  linux-image-unsigned-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
d04414b6b38e4a26c806180bcd7ee7799caafccdd538deb5ce3cc5bcf97bdd42  linux-modules-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb
`

func TestParseChecksums(t *testing.T) {
	sums := parseChecksums([]byte(realChecksums))
	want := map[string]string{
		"linux-headers-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb":        "298da8f03ed5e05fb6d9fef63ab40f0796e005bdd3ce5df123cdd7c01fa7bbf1",
		"linux-headers-6.13.0-061300_6.13.0-061300.202501302155_all.deb":                  "11019230e7b7ab93db36f292d69d372704b77e592a7cc347c725501a4fdfa4a0",
		"linux-image-unsigned-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb": "cc174bc57b858f996855cf8c4d6e71c353ded3ed32cd55c26780b62435778806",
		"linux-modules-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb":        "d04414b6b38e4a26c806180bcd7ee7799caafccdd538deb5ce3cc5bcf97bdd42",
	}
	if !maps.Equal(sums, want) {
		t.Errorf("parseChecksums = %v\nwant %v", sums, want)
	}
	// A 64-hex line in the Sha1 section is not a SHA-256.
	odd := "# Checksums-Sha1:\n" + want["linux-headers-6.13.0-061300_6.13.0-061300.202501302155_all.deb"] + "  x.deb\n# Checksums-Sha256:\n"
	if got := parseChecksums([]byte(odd)); len(got) != 0 {
		t.Errorf("took %v from the Sha1 section", got)
	}
}

func TestParseMainlineDeb(t *testing.T) {
	for _, tc := range []struct {
		link, arch string
		ok         bool
		kind       string
		stamp      string
	}{
		{"https://k/mainline/v6.13/amd64/linux-image-unsigned-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb", "amd64", true, "image", "202501302155"},
		{"https://k/mainline/v6.13/amd64/linux-modules-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb", "amd64", true, "modules", "202501302155"},
		{"https://k/mainline/v4.15.18/linux-image-4.15.18-041518-generic_4.15.18-041518.201804190330_amd64.deb", "amd64", true, "image-unsplit", "201804190330"},
		{"https://k/mainline/v6.4.3/arm64/linux-image-unsigned-6.4.3-060403-generic-64k_6.4.3-060403.202307110536_arm64.deb", "arm64", false, "", ""},
		{"https://k/mainline/v6.13/amd64/linux-headers-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb", "amd64", false, "", ""},
		{"https://k/mainline/v6.13/amd64/linux-image-unsigned-6.13.0-061300-lowlatency_6.13.0-061300.202501302155_amd64.deb", "amd64", false, "", ""},
		{"https://k/mainline/v6.13/amd64/linux-image-unsigned-6.13.0-061300-generic_6.13.0-061300.202501302155_amd64.deb", "arm64", false, "", ""},
	} {
		d, ok := parseMainlineDeb(tc.link, tc.arch)
		if ok != tc.ok || d.Kind != tc.kind || d.Stamp != tc.stamp {
			t.Errorf("parseMainlineDeb(%s, %s) = %+v, %v", tc.link, tc.arch, d, ok)
		}
	}
}

func TestPageLinks(t *testing.T) {
	page := "http://h/mainline/v6.13/"
	body := `<a href="/mainline/">Parent Directory</a> <a href="amd64/linux-x_amd64.deb">x</a>
<a href="../v6.12/">v6.12</a> <a href="amd64/">amd64/</a> <a href="?C=N;O=D">Name</a> <a href="http://evil/x.deb">x</a>`
	got := pageLinks(page, []byte(body))
	want := []string{"http://h/mainline/v6.13/amd64/linux-x_amd64.deb", "http://h/mainline/v6.13/amd64/"}
	if !slices.Equal(got, want) {
		t.Errorf("pageLinks = %v, want %v", got, want)
	}
}

// sid's split packages, as their data.tar list them.
func TestKeepDebMemberSplit(t *testing.T) {
	for in, want := range map[string]string{
		"./usr/lib/modules/7.2.13+deb14-amd64/vmlinuz":               "boot/vmlinuz-7.2.13+deb14-amd64", // linux-binary (signed)
		"./usr/lib/modules/7.2.13+deb14-amd64/vmlinuz.unsigned":      "boot/vmlinuz-7.2.13+deb14-amd64", // linux-binary-unsigned
		"./usr/lib/modules/7.2.13+deb14-amd64/config":                "boot/config-7.2.13+deb14-amd64",  // linux-base
		"./usr/lib/modules/7.2.13+deb14-amd64/System.map":            "",
		"./usr/lib/modules/7.2.13+deb14-amd64/modules.builtin":       "lib/modules/7.2.13+deb14-amd64/modules.builtin",
		"./usr/lib/modules/7.2.13+deb14-amd64/kernel/a/virtio.ko.xz": "lib/modules/7.2.13+deb14-amd64/kernel/a/virtio.ko.xz",
		"./boot/vmlinuz-6.1.0-50-amd64":                              "boot/vmlinuz-6.1.0-50-amd64",
	} {
		if got := keepDebMember(in); got != want {
			t.Errorf("keepDebMember(%s) = %q, want %q", in, got, want)
		}
	}
}
