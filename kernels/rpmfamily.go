package kernels

import (
	"maps"
	"slices"
)

// rpmFamily is what a distro short form of the rpm: source stands for:
// where its kernel is, in which packages, and its signing key.
type rpmFamily struct {
	Repo    string   // $basearch: x86_64 or aarch64
	Package string   // holds the image
	Modules []string // hold the modules, same build
	KeyURL  string   // the distro's published key
	Arches  []Arch   // arches the distro publishes
}

// rpmFamilies are the short forms. Repository layouts and keys are the
// distros' own (their .repo files' baseurl= and gpgkey=, as in
// docs/fleet-kernels.md, which cites where each comes from). None of them
// could be reached from where vmrunner was built: the table is tested
// against fixture repositories of the same layout only.
//
// Packages: EL 8 splits the kernel into kernel-core (image, config and the
// modules a VM needs: virtio is =y or in kernel-core) and kernel-modules;
// EL 9.2 and later also split kernel-modules-core out of kernel-core.
// Amazon Linux and openSUSE ship one package, kernel and kernel-default.
// Oracle's UEK 7 has kernel-uek-core and kernel-uek-modules.
var rpmFamilies = map[string]rpmFamily{
	"alma-8":  {Repo: "https://repo.almalinux.org/almalinux/8/BaseOS/$basearch/os", Package: "kernel-core", KeyURL: "https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-8", Arches: Arches},
	"alma-9":  {Repo: "https://repo.almalinux.org/almalinux/9/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-9", Arches: Arches},
	"alma-10": {Repo: "https://repo.almalinux.org/almalinux/10/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-10", Arches: Arches},

	"rocky-8":  {Repo: "https://dl.rockylinux.org/pub/rocky/8/BaseOS/$basearch/os", Package: "kernel-core", KeyURL: "https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-rockyofficial", Arches: Arches},
	"rocky-9":  {Repo: "https://dl.rockylinux.org/pub/rocky/9/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-9", Arches: Arches},
	"rocky-10": {Repo: "https://dl.rockylinux.org/pub/rocky/10/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-10", Arches: Arches},

	"centos-stream-8":  {Repo: "https://vault.centos.org/8-stream/BaseOS/$basearch/os", Package: "kernel-core", KeyURL: "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-Official", Arches: Arches},
	"centos-stream-9":  {Repo: "https://mirror.stream.centos.org/9-stream/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-Official-SHA256", Arches: Arches},
	"centos-stream-10": {Repo: "https://mirror.stream.centos.org/10-stream/BaseOS/$basearch/os", Package: "kernel-core", Modules: []string{"kernel-modules-core"}, KeyURL: "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-Official-SHA256", Arches: Arches},

	// Amazon Linux: the repositories are named by mirror.list files
	// (/etc/yum.repos.d/amzn2-core.repo, amazonlinux.repo on 2023).
	"amazon-2":             {Repo: "https://cdn.amazonlinux.com/2/core/latest/$basearch/mirror.list", Package: "kernel", KeyURL: "https://cdn.amazonlinux.com/_assets/RPM-GPG-KEY-amazon-linux-2", Arches: Arches},
	"amazon-2-kernel-5.10": {Repo: "https://cdn.amazonlinux.com/2/extras/kernel-5.10/latest/$basearch/mirror.list", Package: "kernel", KeyURL: "https://cdn.amazonlinux.com/_assets/RPM-GPG-KEY-amazon-linux-2", Arches: Arches},
	"amazon-2023":          {Repo: "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/$basearch/mirror.list", Package: "kernel", KeyURL: "https://cdn.amazonlinux.com/_assets/RPM-GPG-KEY-amazon-linux-2023", Arches: Arches},

	"oracle-uek-8": {Repo: "https://yum.oracle.com/repo/OracleLinux/OL8/UEKR7/$basearch", Package: "kernel-uek-core", Modules: []string{"kernel-uek-modules"}, KeyURL: "https://yum.oracle.com/RPM-GPG-KEY-oracle-ol8", Arches: Arches},
	"oracle-uek-9": {Repo: "https://yum.oracle.com/repo/OracleLinux/OL9/UEKR7/$basearch", Package: "kernel-uek-core", Modules: []string{"kernel-uek-modules"}, KeyURL: "https://yum.oracle.com/RPM-GPG-KEY-oracle-ol9", Arches: Arches},

	// openSUSE Leap: one repository for both arches since 15.3; kernel
	// updates come from the SLE update repository.
	"opensuse-leap-15.6": {Repo: "https://download.opensuse.org/update/leap/15.6/sle", Package: "kernel-default", KeyURL: "https://download.opensuse.org/update/leap/15.6/sle/repodata/repomd.xml.key", Arches: Arches},
}

// RPMDistros lists the short forms of the rpm: source, sorted.
func RPMDistros() []string {
	return slices.Sorted(maps.Keys(rpmFamilies))
}
