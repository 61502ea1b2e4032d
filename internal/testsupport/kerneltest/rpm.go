package kerneltest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

// RPMRepo is an RPM repository made with the tools the distros make theirs
// with: rpmbuild for the packages, rpmsign with a throwaway gpg key, and
// createrepo_c for repodata/. It is served from a directory by a plain
// file server on localhost; each repository is a directory under Root.
type RPMRepo struct {
	*httptest.Server
	Root    string
	gnupg   string
	uid     string
	Keyring string // the signing key's public part, binary
}

// RPMPackage is one package to build.
type RPMPackage struct {
	Name, Version, Release string
	Arch                   kernels.Arch
	Files                  []File // absolute in the package, without the leading /
	// Payload is rpmbuild's _binary_payload: w3.zstdio (EL 8 and later,
	// Fedora), w2.xzdio (openSUSE, Amazon Linux 2023); default zstd.
	Payload string
}

// NewRPMRepo makes an empty tree of repositories with a fresh signing key.
func NewRPMRepo(t testing.TB) *RPMRepo {
	t.Helper()
	NeedTools(t, map[string]string{"rpmbuild": "rpm", "rpmsign": "rpm", "createrepo_c": "createrepo-c", "gpg": "gnupg"})
	r := &RPMRepo{Root: t.TempDir(), uid: "vmrunner fixture rpm <rpm@example.org>"}
	r.gnupg, r.Keyring = GPGKey(t, r.uid)
	r.Server = httptest.NewServer(http.FileServer(http.Dir(r.Root)))
	t.Cleanup(r.Close)
	return r
}

// ELFiles lays out k as EL 8 and later package it: the image, config and
// System.map beside the modules in /lib/modules/<release>/ of kernel-core
// (its /boot files are %ghost), the modules in kernel-modules-core.
func ELFiles(t testing.TB, k *kernels.Kernel) (core, modules []File) {
	t.Helper()
	dir := "lib/modules/" + k.Release + "/"
	for _, f := range Files(t, k, ImageDeb) {
		core = append(core, File{Name: dir + "vmlinuz", Data: f.Data})
	}
	for _, f := range Files(t, k, ModulesDeb) {
		if strings.HasPrefix(f.Name, "boot/config-") {
			core = append(core, File{Name: dir + "config", Data: f.Data})
			continue
		}
		modules = append(modules, f)
	}
	core = append(core, File{Name: dir + "System.map", Data: []byte("ffffffff81000000 T _text\n")})
	return core, modules
}

// Build makes p's .rpm with rpmbuild, signs it with rpmsign (unless
// unsigned) and puts it into repo/Packages/; it returns its path relative
// to repo.
func (r *RPMRepo) Build(t testing.TB, repo string, p RPMPackage, signed bool) string {
	t.Helper()
	top := t.TempDir()
	root := filepath.Join(top, "root")
	var paths []string
	for _, f := range p.Files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(f.Name)), f.Data)
		paths = append(paths, "/"+f.Name)
	}
	sort.Strings(paths)
	arch := "x86_64"
	if p.Arch == kernels.ARM64 {
		arch = "aarch64"
	}
	spec := fmt.Sprintf(`Name: %s
Version: %s
Release: %s
Summary: Linux kernel (vmrunner fixture)
License: GPL-2.0-only
AutoReqProv: no
%%global debug_package %%{nil}
%%global __os_install_post %%{nil}
%%global _build_id_links none

%%description
A Debian kernel repackaged in the layout of an EL kernel package.

%%install
cp -a %s/. %%{buildroot}/

%%files
%s
`, p.Name, p.Version, p.Release, root, strings.Join(paths, "\n"))
	specPath := filepath.Join(top, p.Name+".spec")
	writeFile(t, specPath, []byte(spec))
	payload := p.Payload
	if payload == "" {
		payload = "w3.zstdio"
	}
	// --target alone: a BuildArch of another arch than the host's is
	// refused ("No compatible architectures found for build").
	Run(t, top, nil, "rpmbuild", "--define", "_topdir "+top, "--define", "_binary_payload "+payload, "--target", arch, "-bb", specPath)
	name := fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, arch)
	built := filepath.Join(top, "RPMS", arch, name)
	if signed {
		gpg, err := exec.LookPath("gpg") // Debian's rpm looks for gpg2
		if err != nil {
			t.Fatal(err)
		}
		Run(t, top, []string{"GNUPGHOME=" + r.gnupg}, "rpmsign", "--define", "__gpg "+gpg, "--define", "_gpg_name "+r.uid, "--addsign", built)
	}
	rel := "Packages/" + name
	data, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(r.Root, repo, rel), data)
	return rel
}

// Publish runs createrepo_c on repo, compressing the metadata with
// compress (gz, xz, bz2; "" for createrepo_c's default).
func (r *RPMRepo) Publish(t testing.TB, repo, compress string) {
	t.Helper()
	args := []string{"--quiet", "--no-database"}
	if compress != "" {
		args = append(args, "--general-compress-type", compress)
	}
	if err := os.MkdirAll(filepath.Join(r.Root, repo), 0o755); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(r.Root, repo, "repodata"))
	Run(t, "", nil, "createrepo_c", append(args, filepath.Join(r.Root, repo))...)
}

// RepoURL is the root of repo.
func (r *RPMRepo) RepoURL(repo string) string { return r.URL + "/" + repo }

// BootFiles lays out k as one package holding everything, as Amazon Linux's
// kernel and SUSE's kernel-default do: boot/vmlinuz-<release> (SUSE's arm64
// kernel: boot/Image-<release>, the uncompressed Image), boot/config-<release>
// and lib/modules/<release>/.
func BootFiles(t testing.TB, k *kernels.Kernel, suseArm64 bool) []File {
	t.Helper()
	files := Files(t, k, ImageDeb)
	if suseArm64 {
		data, err := os.ReadFile(k.Uncompressed)
		if err != nil {
			t.Fatal(err)
		}
		files = []File{{Name: "boot/Image-" + k.Release, Data: data}}
	}
	return append(files, Files(t, k, ModulesDeb)...)
}

// MirrorList writes a mirror.list at path (relative to Root) naming the
// repository roots, as Amazon Linux's repositories are named.
func (r *RPMRepo) MirrorList(t testing.TB, path string, roots ...string) {
	t.Helper()
	writeFile(t, filepath.Join(r.Root, path), []byte(strings.Join(roots, "\n")+"\n"))
}
