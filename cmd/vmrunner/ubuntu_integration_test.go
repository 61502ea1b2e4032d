package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// ubuntuFixture is an Ubuntu-format archive built with dpkg-deb,
// apt-ftparchive and gpg, carrying Debian bookworm's real kernels for both
// arches repackaged under Ubuntu's names and layout: the image in
// linux-image-unsigned-<abi>-<flavour> (boot/vmlinuz-<release>), the config
// and modules in linux-modules-<abi>-<flavour>. Debian's release strings
// (6.1.0-N-amd64, 6.1.0-N-cloud-arm64) are baked into the kernels, so the
// flavours are Debian's; Ubuntu's are "generic" on both arches.
type ubuntuFixture struct {
	*kerneltest.AptArchive
	kernels map[kernels.Arch]*kernels.Kernel
	image   map[kernels.Arch]string // pool path of the image package
	modules map[kernels.Arch]string // pool path of the modules package
}

// abiFlavour splits a Debian release, 6.1.0-41-cloud-arm64, into Ubuntu's
// ABI (6.1.0-41) and flavour (cloud-arm64).
func abiFlavour(t *testing.T, release string) (string, string) {
	parts := strings.SplitN(release, "-", 3)
	if len(parts) != 3 {
		t.Fatalf("release %q is not <version>-<abi>-<flavour>", release)
	}
	return parts[0] + "-" + parts[1], parts[2]
}

func newUbuntuFixture(t *testing.T) *ubuntuFixture {
	f := &ubuntuFixture{AptArchive: kerneltest.NewAptArchive(t), kernels: map[kernels.Arch]*kernels.Kernel{},
		image: map[kernels.Arch]string{}, modules: map[kernels.Arch]string{}}
	for _, arch := range kernels.Arches {
		k := kerneltest.DebianSuite(t, "bookworm", arch)
		abi, flavour := abiFlavour(t, k.Release)
		version := abi + ".100~22.04.1"
		f.kernels[arch] = k
		f.image[arch] = f.Build(t, kerneltest.AptPackage{Name: "linux-image-unsigned-" + abi + "-" + flavour, Version: version, Arch: arch,
			Files: kerneltest.Files(t, k, kerneltest.ImageDeb)})
		f.modules[arch] = f.Build(t, kerneltest.AptPackage{Name: "linux-modules-" + abi + "-" + flavour, Version: version, Arch: arch,
			Files: kerneltest.Files(t, k, kerneltest.ModulesDeb)})
	}
	return f
}

// source is the ubuntu: source of arch's kernel in suite.
func (f *ubuntuFixture) source(t *testing.T, suite string, arch kernels.Arch, keyring string) string {
	abi, flavour := abiFlavour(t, f.kernels[arch].Release)
	series := strings.Join(strings.SplitN(abi, ".", 3)[:2], ".")
	return `{ubuntu: {suite: ` + suite + `, version: "` + series + `", flavour: ` + flavour + `, mirror: "` + f.URL + `", keyring: "` + keyring + `"}}`
}

// TestUbuntuArchive resolves, verifies and boots an Ubuntu-format archive's
// kernels on both arches through a lock, and runs btf, features and the
// verifier probes on them; then the archive moves on and a run from the
// lock still boots the pinned kernels.
func TestUbuntuArchive(t *testing.T) {
	integration(t)
	f := newUbuntuFixture(t)
	f.Publish(t, "jammy-updates", map[kernels.Arch][]string{
		kernels.X86_64: {f.image[kernels.X86_64], f.modules[kernels.X86_64]},
		kernels.ARM64:  {f.image[kernels.ARM64], f.modules[kernels.ARM64]},
	})
	dir := t.TempDir()
	cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "results")
	// A matrix puts only files of its own directory into a VM.
	probes, err := os.ReadFile("../../testdata/bpf/probes.o")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probes.o"), probes, 0o644); err != nil {
		t.Fatal(err)
	}
	matrix := filepath.Join(dir, "fleet.yaml")
	yaml := "kernels:\n" +
		"  - {name: jammy-x86, arch: x86_64, source: " + f.source(t, "jammy-updates", kernels.X86_64, f.Keyring) + "}\n" +
		"  - {name: jammy-arm, arch: arm64, source: " + f.source(t, "jammy-updates", kernels.ARM64, f.Keyring) + "}\n" +
		`checks:
  - btf: {require: [task_struct, sk_buff]}
  - features: {programs: all, maps: all, helpers: [ringbuf_output, loop]}
  - verifier:
      objects: [probes.o]
      expect:
        rejected_stack_oob: {fail: [">=3.18"]}
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
		if k.Pin.Type != "ubuntu" || len(k.Pin.Files) != 2 || !strings.HasPrefix(k.Pin.Package, "linux-image-unsigned-6.1.0-") ||
			!strings.HasSuffix(k.Pin.Files[1].URL, "/"+f.modules[k.Arch]) {
			t.Errorf("%s/%s pin = %+v", k.Name, k.Arch, k.Pin)
		}
	}

	// The archive moves on: the suite no longer lists the kernels; the
	// pinned packages stay in the pool, as Ubuntu's do.
	f.Publish(t, "jammy-updates", nil)
	res := vmrunnerCLI(t, "run", "--cache-dir", filepath.Join(dir, "cache2"), "--out", out, matrix)
	if res.code != 0 {
		t.Fatalf("run: exit %d, want 0", res.code)
	}
	r, _ := readResults(t, out)
	checks := map[string]int{}
	for _, rec := range r.Results {
		label := rec.Kernel + "/" + rec.Arch + "/" + rec.Check
		check, _, _ := strings.Cut(rec.Check, "/") // verifier/probes/<program>
		checks[rec.Kernel+"/"+check]++
		k := f.kernels[kernels.Arch(rec.Arch)]
		if rec.Status != "pass" || rec.KernelRelease != k.Release || rec.Source.Type != "ubuntu" ||
			!strings.HasPrefix(rec.Source.Package, "linux-image-unsigned-") {
			t.Errorf("%s: %s release %q source %+v: %s", label, rec.Status, rec.KernelRelease, rec.Source, rec.Message)
		}
	}
	for _, name := range []string{"jammy-x86", "jammy-arm"} {
		if checks[name+"/btf"] != 1 || checks[name+"/features"] != 1 || checks[name+"/verifier"] < 6 {
			t.Errorf("%s: records per check %v, want btf, features and the verifier probes", name, checks)
		}
	}
}

// TestUbuntuArchiveRefusals: a wrong signature, a checksum mismatch, a
// missing modules package and a kernel for the other arch are each one
// line naming what and where, exit 2 or 3, and leave no kernel in the
// cache.
func TestUbuntuArchiveRefusals(t *testing.T) {
	integration(t)
	f := newUbuntuFixture(t)
	x86, arm := kernels.X86_64, kernels.ARM64
	f.Publish(t, "jammy-updates", map[kernels.Arch][]string{x86: {f.image[x86], f.modules[x86]}})
	f.Publish(t, "jammy-nomodules", map[kernels.Arch][]string{x86: {f.image[x86]}})
	// The arm64 index lists the amd64 kernel's packages under arm64's
	// flavour: built as arm64 packages, holding the x86_64 kernel.
	k := f.kernels[x86]
	abi, _ := abiFlavour(t, k.Release)
	_, armFlavour := abiFlavour(t, f.kernels[arm].Release)
	// The release in the names must be the arm64 one for the index to
	// match; the kernel inside is x86_64's.
	wrongImage := f.Build(t, kerneltest.AptPackage{Name: "linux-image-unsigned-" + abi + "-" + armFlavour, Version: abi + ".1", Arch: arm,
		Files: kerneltest.Files(t, k, kerneltest.ImageDeb)})
	wrongModules := f.Build(t, kerneltest.AptPackage{Name: "linux-modules-" + abi + "-" + armFlavour, Version: abi + ".1", Arch: arm,
		Files: kerneltest.Files(t, k, kerneltest.ModulesDeb)})
	f.Publish(t, "jammy-wrongarch", map[kernels.Arch][]string{arm: {wrongImage, wrongModules}})
	// A checksum mismatch: the pool's modules package changes after the
	// index was made.
	f.Publish(t, "jammy-tampered", map[kernels.Arch][]string{x86: {f.image[x86], f.modules[x86]}})
	_, otherKey := kerneltest.GPGKey(t, "someone else <other@example.org>")

	cache := t.TempDir()
	_, x86Flavour := abiFlavour(t, k.Release)
	testPullRefusals(t, cache, []pullRefusal{
		{"wrong signature", f.source(t, "jammy-updates", x86, otherKey), "x86_64", 3,
			[]string{"/dists/jammy-updates/InRelease", "bad signature"}, nil},
		{"missing modules package", f.source(t, "jammy-nomodules", x86, f.Keyring), "x86_64", 2,
			[]string{"has no linux-modules-" + abi + "-" + x86Flavour, "jammy-nomodules main/binary-amd64 on " + f.URL}, nil},
		{"kernel for the other arch", f.source(t, "jammy-wrongarch", arm, f.Keyring), "arm64", 2,
			[]string{"kernel built for another architecture", "x86_64"}, nil},
		{"checksum mismatch", f.source(t, "jammy-tampered", x86, f.Keyring), "x86_64", 3,
			[]string{"checksum mismatch", f.modules[x86]}, func() {
				flipMiddleByte(t, filepath.Join(f.Root, f.modules[x86]))
			}},
	})
}
