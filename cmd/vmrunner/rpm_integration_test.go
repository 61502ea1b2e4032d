package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// rpmFixture is an EL 9-layout repository per arch, built with rpmbuild,
// rpmsign and createrepo_c, holding Debian bookworm's real kernels
// repackaged as kernel-core (lib/modules/<release>/vmlinuz, config) and
// kernel-modules-core (the modules), signed with a throwaway key.
type rpmFixture struct {
	*kerneltest.RPMRepo
	kernels map[kernels.Arch]*kernels.Kernel
}

func newRPMFixture(t *testing.T) *rpmFixture {
	f := &rpmFixture{RPMRepo: kerneltest.NewRPMRepo(t), kernels: map[kernels.Arch]*kernels.Kernel{}}
	for _, arch := range kernels.Arches {
		f.kernels[arch] = kerneltest.DebianSuite(t, "bookworm", arch)
	}
	return f
}

// publish builds arch's kernel into repo as EL 9 packages; what leaves
// out kernel-modules-core, unsigned leaves the packages unsigned.
func (f *rpmFixture) publish(t *testing.T, repo string, arch kernels.Arch, inside *kernels.Kernel, withModules, signed bool, compress string) []string {
	core, modules := kerneltest.ELFiles(t, inside)
	rel := "50.el9"
	paths := []string{f.Build(t, repo, kerneltest.RPMPackage{Name: "kernel-core", Version: "6.1.0", Release: rel, Arch: arch, Files: core}, signed)}
	if withModules {
		paths = append(paths, f.Build(t, repo, kerneltest.RPMPackage{Name: "kernel-modules-core", Version: "6.1.0", Release: rel, Arch: arch,
			Files: modules, Payload: "w2.xzdio"}, signed))
	}
	f.Publish(t, repo, compress)
	return paths
}

// TestRPMRepository resolves, verifies and boots EL 9-layout kernels on
// both arches through alma-9's short form pointed at the fixture, locked
// first, and runs btf and features on them.
func TestRPMRepository(t *testing.T) {
	integration(t)
	f := newRPMFixture(t)
	f.publish(t, "el9/x86_64", kernels.X86_64, f.kernels[kernels.X86_64], true, true, "")
	f.publish(t, "el9/aarch64", kernels.ARM64, f.kernels[kernels.ARM64], true, true, "xz")

	dir := t.TempDir()
	cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "results")
	matrix := filepath.Join(dir, "fleet.yaml")
	yaml := `kernels:
  - {name: el9, arch: [x86_64, arm64], source: {rpm: {distro: alma-9, repo: "` + f.RepoURL("el9/$basearch") + `", key: "` + f.Keyring + `"}}}
checks:
  - btf: {require: [task_struct, sk_buff]}
  - features: {programs: all, maps: all, helpers: [ringbuf_output, loop]}
`
	if err := os.WriteFile(matrix, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := vmrunnerCLI(t, "lock", "--cache-dir", cache, matrix); res.code != 0 || !strings.Contains(res.stdout, "(2 kernels)") {
		t.Fatalf("lock: exit %d", res.code)
	}
	lock, err := kernels.ReadLock(filepath.Join(dir, "fleet.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range lock.Kernels {
		if k.Pin.Type != "rpm" || k.Pin.Package != "kernel-core" || k.Pin.Version != "6.1.0-50.el9" || len(k.Pin.Files) != 2 ||
			!strings.HasSuffix(k.Pin.Files[1].URL, "/Packages/kernel-modules-core-6.1.0-50.el9."+map[kernels.Arch]string{kernels.X86_64: "x86_64", kernels.ARM64: "aarch64"}[k.Arch]+".rpm") {
			t.Errorf("%s/%s pin = %+v", k.Name, k.Arch, k.Pin)
		}
	}
	// The repository moves on: its metadata no longer lists the kernel.
	for _, repo := range []string{"el9/x86_64", "el9/aarch64"} {
		os.RemoveAll(filepath.Join(f.Root, repo, "repodata"))
	}
	res := vmrunnerCLI(t, "run", "--cache-dir", filepath.Join(dir, "cache2"), "--out", out, matrix)
	if res.code != 0 {
		t.Fatalf("run: exit %d, want 0", res.code)
	}
	r, _ := readResults(t, out)
	seen := 0
	for _, rec := range r.Results {
		seen++
		k := f.kernels[kernels.Arch(rec.Arch)]
		if rec.Status != "pass" || rec.KernelRelease != k.Release || rec.Source.Type != "rpm" || rec.Source.Package != "kernel-core" {
			t.Errorf("%s/%s/%s: %s release %q source %+v: %s", rec.Kernel, rec.Arch, rec.Check, rec.Status, rec.KernelRelease, rec.Source, rec.Message)
		}
	}
	if seen != 4 {
		t.Errorf("%d records, want btf and features on two VMs", seen)
	}
}

// TestRPMRepositoryRefusals: a wrong key, an unsigned package, a package
// that is not what primary says, a missing modules package and a kernel
// for the other arch are each one line naming what and where, exit 2 or 3,
// and leave no kernel in the cache.
func TestRPMRepositoryRefusals(t *testing.T) {
	integration(t)
	f := newRPMFixture(t)
	x86 := f.kernels[kernels.X86_64]
	f.publish(t, "good", kernels.X86_64, x86, true, true, "")
	f.publish(t, "unsigned", kernels.X86_64, x86, true, false, "")
	f.publish(t, "nomodules", kernels.X86_64, x86, false, true, "")
	f.publish(t, "wrongarch", kernels.ARM64, x86, true, true, "")
	tampered := f.publish(t, "tampered", kernels.X86_64, x86, true, true, "")
	_, otherKey := kerneltest.GPGKey(t, "someone else <other@example.org>")

	src := func(repo, key string) string {
		return `{rpm: {distro: alma-9, repo: "` + f.RepoURL(repo) + `", key: "` + key + `"}}`
	}
	cache := t.TempDir()
	testPullRefusals(t, cache, []pullRefusal{
		{"wrong key", src("good", otherKey), "x86_64", 3, []string{"verify " + f.RepoURL("good") + "/Packages/kernel-core-", "bad signature", otherKey}, nil},
		{"unsigned", src("unsigned", f.Keyring), "x86_64", 3, []string{"verify " + f.RepoURL("unsigned") + "/Packages/kernel-core-", "bad signature"}, nil},
		{"missing modules package", src("nomodules", f.Keyring), "x86_64", 2,
			[]string{"kernel-core-6.1.0-50.el9.x86_64 has no kernel-modules-core of the same build in " + f.RepoURL("nomodules")}, nil},
		{"kernel for the other arch", src("wrongarch", f.Keyring), "arm64", 2, []string{"kernel built for another architecture", "x86_64"}, nil},
		{"checksum mismatch", src("tampered", f.Keyring), "x86_64", 3, []string{"checksum mismatch", f.RepoURL("tampered") + "/" + tampered[1]}, func() {
			flipMiddleByte(t, filepath.Join(f.Root, "tampered", tampered[1]))
		}},
		{"no repository", src("nothing", f.Keyring), "x86_64", 2, []string{"no repodata/repomd.xml under " + f.RepoURL("nothing")}, nil},
	})
}

// TestRPMFamilies boots the layouts of the other short forms: Amazon Linux
// 2023's kernel (boot/vmlinuz-*, repositories named by a mirror.list),
// openSUSE Leap's kernel-default (boot/Image-* on arm64), EL 8's
// kernel-core holding everything, and Oracle UEK's kernel-uek-core with
// kernel-uek-modules, on both arches, pointed at fixture repositories by
// repo: and key:.
func TestRPMFamilies(t *testing.T) {
	integration(t)
	f := newRPMFixture(t)
	for _, arch := range kernels.Arches {
		k, a := f.kernels[arch], map[kernels.Arch]string{kernels.X86_64: "x86_64", kernels.ARM64: "aarch64"}[arch]
		f.Build(t, "al2023/2023.6/"+a, kerneltest.RPMPackage{Name: "kernel", Version: "6.1.0", Release: "50.amzn2023", Arch: arch,
			Files: kerneltest.BootFiles(t, k, false), Payload: "w2.xzdio"}, true)
		f.Publish(t, "al2023/2023.6/"+a, "xz")
		f.MirrorList(t, "al2023/latest/"+a+"/mirror.list", f.RepoURL("al2023/2023.6/"+a)+"/")
		f.Build(t, "leap/15.6", kerneltest.RPMPackage{Name: "kernel-default", Version: "6.1.0", Release: "150600.50.1", Arch: arch,
			Files: kerneltest.BootFiles(t, k, arch == kernels.ARM64)}, true)
	}
	for _, arch := range kernels.Arches {
		k, a := f.kernels[arch], map[kernels.Arch]string{kernels.X86_64: "x86_64", kernels.ARM64: "aarch64"}[arch]
		core, modules := kerneltest.ELFiles(t, k)
		// EL 8: the image, config and modules all in kernel-core.
		f.Build(t, "el8/"+a, kerneltest.RPMPackage{Name: "kernel-core", Version: "6.1.0", Release: "50.el8_10", Arch: arch,
			Files: append(core, modules...)}, true)
		f.Publish(t, "el8/"+a, "")
		// Oracle UEK 7: kernel-uek-core and kernel-uek-modules.
		f.Build(t, "uek/"+a, kerneltest.RPMPackage{Name: "kernel-uek-core", Version: "6.1.0", Release: "50.el8uek", Arch: arch, Files: core}, true)
		f.Build(t, "uek/"+a, kerneltest.RPMPackage{Name: "kernel-uek-modules", Version: "6.1.0", Release: "50.el8uek", Arch: arch, Files: modules}, true)
		f.Publish(t, "uek/"+a, "")
	}
	f.Publish(t, "leap/15.6", "bz2") // one repository for both arches, as Leap's
	dir := t.TempDir()
	matrix := filepath.Join(dir, "families.yaml")
	yaml := `kernels:
  - {name: al2023, arch: [x86_64, arm64], source: {rpm: {distro: amazon-2023, version: "6.1", repo: "` + f.RepoURL("al2023/latest/$basearch/mirror.list") + `", key: "` + f.Keyring + `"}}}
  - {name: leap, arch: [x86_64, arm64], source: {rpm: {distro: opensuse-leap-15.6, repo: "` + f.RepoURL("leap/15.6") + `", key: "` + f.Keyring + `"}}}
  - {name: el8, arch: [x86_64, arm64], source: {rpm: {distro: alma-8, version: "6.1.0", repo: "` + f.RepoURL("el8/$basearch") + `", key: "` + f.Keyring + `"}}}
  - {name: uek, arch: [x86_64, arm64], source: {rpm: {distro: oracle-uek-8, repo: "` + f.RepoURL("uek/$basearch") + `", key: "` + f.Keyring + `"}}}
checks:
  - btf: {require: [task_struct, sk_buff]}
`
	if err := os.WriteFile(matrix, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	res := vmrunnerCLI(t, "run", "--cache-dir", filepath.Join(dir, "cache"), "--out", out, matrix)
	if res.code != 0 {
		t.Fatalf("run: exit %d, want 0", res.code)
	}
	r, _ := readResults(t, out)
	want := map[string]string{"al2023": "kernel", "leap": "kernel-default", "el8": "kernel-core", "uek": "kernel-uek-core"}
	seen := 0
	for _, rec := range r.Results {
		seen++
		k := f.kernels[kernels.Arch(rec.Arch)]
		if rec.Status != "pass" || rec.KernelRelease != k.Release || rec.Source.Type != "rpm" || rec.Source.Package != want[rec.Kernel] {
			t.Errorf("%s/%s/%s: %s release %q source %+v: %s", rec.Kernel, rec.Arch, rec.Check, rec.Status, rec.KernelRelease, rec.Source, rec.Message)
		}
	}
	if seen != 8 {
		t.Errorf("%d records, want btf on eight VMs", seen)
	}
}
