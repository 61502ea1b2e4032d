package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestKernelSources boots three VMs from the non-Debian sources, all made
// from the real cached Debian trixie kernels: an arm64 kernel pulled from an
// in-process OCI registry (multi-arch index, ci-kernels layout), an x86_64
// kernel from an HTTP server laid out like kernel.ubuntu.com/mainline, and
// an x86_64 kernel given as local files. The matrix is locked first, so the
// run resolves through the lock; inspect and list run on each source.
func TestKernelSources(t *testing.T) {
	integration(t)
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	arm64 := kerneltest.Debian(t, kernels.ARM64)

	host := kerneltest.Registry(t)
	kerneltest.PushIndex(t, host+"/cilium/ci-kernels:6.12", map[kernels.Arch]v1.Image{
		kernels.X86_64: kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.CIKernels)),
		kernels.ARM64:  kerneltest.Image(t, kernels.ARM64, kerneltest.Files(t, arm64, kerneltest.CIKernels)),
	})
	mainline := kerneltest.NewMainline(t)
	mainline.Publish(t, "v6.12", amd64)

	dir := t.TempDir()
	cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "results")
	matrix := filepath.Join(dir, "matrix.yaml")
	write := func(extra string) {
		t.Helper()
		yaml := `kernels:
  - {name: oci, arch: arm64, source: {oci: "` + host + `/cilium/ci-kernels:6.12"}}
  - {name: mainline, arch: x86_64, source: {ubuntu-mainline: {version: v6.12, url: "` + mainline.Root() + `"}}}
  - {name: file, arch: x86_64, source: {file: {kernel: "` + amd64.Image + `", modules: "` + amd64.Modules + `", config: "` + amd64.Config + `"}}}
` + extra + `checks: [btf]
`
		if err := os.WriteFile(matrix, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")

	res := vmrunnerCLI(t, "lock", "--cache-dir", cache, matrix)
	if res.code != 0 || !strings.Contains(res.stdout, "wrote "+filepath.Join(dir, "matrix.lock")+" (3 kernels)") {
		t.Fatalf("lock: exit %d", res.code)
	}
	var lock kernels.LockFile
	data, _ := os.ReadFile(filepath.Join(dir, "matrix.lock"))
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	for _, k := range lock.Kernels {
		switch k.Name {
		case "oci":
			if !strings.HasPrefix(k.Pin.Digest, "sha256:") {
				t.Errorf("oci pin has no digest: %+v", k.Pin)
			}
		case "mainline", "file":
			if len(k.Pin.Files) < 2 || len(k.Pin.Files[0].SHA256) != 64 {
				t.Errorf("%s pin has no files with sha256: %+v", k.Name, k.Pin)
			}
		}
	}

	res = vmrunnerCLI(t, "run", "--cache-dir", cache, "--out", out, matrix)
	if res.code != 0 {
		t.Fatalf("run: exit %d, want 0", res.code)
	}
	r, _ := readResults(t, out)
	want := map[string]string{"oci/arm64": arm64.Release, "mainline/x86_64": amd64.Release, "file/x86_64": amd64.Release}
	for _, rec := range r.Results {
		label := rec.Kernel + "/" + rec.Arch
		if rec.Check != "btf" || rec.Status != "pass" || rec.KernelRelease != want[label] || rec.Source.Type != map[string]string{"oci": "oci", "mainline": "ubuntu-mainline", "file": "file"}[rec.Kernel] {
			t.Errorf("%s: %s %s release %q source %q: %s", label, rec.Check, rec.Status, rec.KernelRelease, rec.Source.Type, rec.Message)
		}
		delete(want, label)
	}
	if len(want) != 0 {
		t.Errorf("no results for %v", want)
	}

	// inspect, from the cache, on each source.
	for _, name := range []string{"oci", "mainline", "file"} {
		res := vmrunnerCLI(t, "kernels", "inspect", "--cache-dir", cache, "--matrix", matrix, "--json", name)
		var reps []kernels.Description
		if err := json.Unmarshal([]byte(res.stdout), &reps); res.code != 0 || err != nil || len(reps) != 1 {
			t.Fatalf("inspect %s: exit %d, %v", name, res.code, err)
		}
		rep := reps[0]
		if name == "oci" {
			// ci-kernels ships no config (its kernels have
			// /proc/config.gz) and arm64's raw Image is no ELF: nothing
			// on the host says whether it has BTF.
			if rep.Config != nil || rep.BTF || rep.Modules == 0 || rep.PVH {
				t.Errorf("inspect %s = %+v", name, rep)
			}
			continue
		}
		if !rep.BTF || rep.Config["CONFIG_BPF_SYSCALL"] != "y" || rep.Modules == 0 || (rep.Arch == kernels.X86_64) != rep.PVH {
			t.Errorf("inspect %s = %+v", name, rep)
		}
	}

	// A changed matrix makes the lock stale; list says so and shows what
	// is cached.
	write("  - {name: extra, arch: x86_64, source: {oci: \"" + host + "/cilium/ci-kernels:6.12\"}}\n")
	res = vmrunnerCLI(t, "kernels", "list", "--cache-dir", cache, matrix)
	if res.code != 0 || !strings.Contains(res.stderr, "lock file is stale") || !strings.Contains(res.stdout, "oci (locked)") ||
		!strings.Contains(res.stdout, "no") {
		t.Errorf("list after a matrix change: exit %d", res.code)
	}
}

// TestKernelSourceErrors: bad sources are one-line errors with exit 2,
// download trouble exit 3, and nothing half-written stays in the cache.
func TestKernelSourceErrors(t *testing.T) {
	integration(t)
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	host := kerneltest.Registry(t)
	kerneltest.PushIndex(t, host+"/amd64only:1", map[kernels.Arch]v1.Image{
		kernels.X86_64: kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.CIKernels)),
	})
	kerneltest.Push(t, host+"/nokernel:1", kerneltest.Image(t, kernels.X86_64, kerneltest.Files(t, amd64, kerneltest.ModulesOnly)))
	mainline := kerneltest.NewMainline(t)
	urls, _ := mainline.Publish(t, "v6.12", amd64)
	mainline.Put("/mainline/v6.12/amd64/CHECKSUMS", []byte(strings.Repeat("0", 64)+"  "+filepath.Base(urls[0])+"\n"+strings.Repeat("0", 64)+"  "+filepath.Base(urls[1])+"\n"))
	cache := t.TempDir()

	for _, tc := range []struct {
		name, source string
		arch         string
		code         int
		msg          string
	}{
		{"tag not found", `{oci: "` + host + `/amd64only:2"}`, "x86_64", 2, "no such repository or tag"},
		{"image without a kernel", `{oci: "` + host + `/nokernel:1"}`, "x86_64", 2, "has no /boot/vmlinuz"},
		{"arch missing from index", `{oci: "` + host + `/amd64only:1"}`, "arm64", 2, "has no linux/arm64 variant"},
		{"checksum mismatch", `{ubuntu-mainline: {version: v6.12, url: "` + mainline.Root() + `"}}`, "x86_64", 3, "checksum mismatch"},
		{"mainline version missing", `{ubuntu-mainline: {version: v6.99, url: "` + mainline.Root() + `"}}`, "x86_64", 2, "ubuntu-mainline v6.99 has no directory"},
		{"not a kernel tree", `{build: {tree: "` + t.TempDir() + `"}}`, "x86_64", 2, "is not a Linux source tree"},
		{"registry unreachable", `{oci: "127.0.0.1:1/ci-kernels:6.1"}`, "x86_64", 3, "mirror unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := writeFile(t, "matrix.yaml", "kernels:\n  - {name: k, arch: "+tc.arch+", source: "+tc.source+"}\nchecks: [btf]\n")
			res := vmrunnerCLI(t, "kernels", "pull", "--cache-dir", cache, m)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if res.code != tc.code || !strings.Contains(res.stderr, tc.msg) || !strings.HasPrefix(lines[len(lines)-1], "vmrunner: k/"+tc.arch+": ") {
				t.Errorf("exit %d, want %d with one line containing %q", res.code, tc.code, tc.msg)
			}
			entries, _ := os.ReadDir(filepath.Join(cache, "kernels"))
			for _, e := range entries {
				t.Errorf("cache holds kernels/%s after a failure", e.Name())
			}
		})
	}
}

// TestKernelsPrune removes what a matrix does not use, and only that.
func TestKernelsPrune(t *testing.T) {
	integration(t)
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	mainline := kerneltest.NewMainline(t)
	mainline.Publish(t, "v6.12", amd64)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	both := writeFile(t, "both.yaml", `kernels:
  - {name: mainline, arch: x86_64, source: {ubuntu-mainline: {version: v6.12, url: "`+mainline.Root()+`"}}}
  - {name: file, arch: x86_64, source: {file: {kernel: "`+amd64.Image+`"}}}
checks: [btf]
`)
	fileOnly := writeFile(t, "file.yaml", "kernels:\n  - {name: file, arch: x86_64, source: {file: {kernel: \""+amd64.Image+"\"}}}\nchecks: [btf]\n")
	if res := vmrunnerCLI(t, "kernels", "pull", "--cache-dir", cache, both); res.code != 0 {
		t.Fatalf("pull: exit %d", res.code)
	}
	count := func() int {
		k, _ := os.ReadDir(filepath.Join(cache, "kernels"))
		b, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
		return len(k) + len(b)
	}
	if n := count(); n != 4 { // two kernels, the two mainline debs
		t.Fatalf("%d cache entries after pull, want 4", n)
	}
	// Prune also removes stale QEMU socket directories of the temporary
	// directory: give it one of its own.
	tmpEnv := []string{"TMPDIR=" + t.TempDir()}
	res := vmrunnerCLIEnv(t, tmpEnv, "kernels", "prune", "--cache-dir", cache, "--dry-run", fileOnly)
	if res.code != 0 || !strings.Contains(res.stdout, "3 entries removed, would free") || count() != 4 {
		t.Fatalf("prune --dry-run: exit %d, %d entries left", res.code, count())
	}
	res = vmrunnerCLIEnv(t, tmpEnv, "kernels", "prune", "--cache-dir", cache, fileOnly)
	if res.code != 0 || !strings.Contains(res.stdout, "3 entries removed, freed") || count() != 1 {
		t.Fatalf("prune: exit %d, %d entries left", res.code, count())
	}
	res = vmrunnerCLI(t, "kernels", "list", "--cache-dir", cache, both)
	if !strings.Contains(res.stdout, "mainline  x86_64  ubuntu-mainline  -") || !strings.Contains(res.stdout, "file      x86_64  file             6.12") {
		t.Errorf("list after prune: exit %d", res.code)
	}
	res = vmrunnerCLIEnv(t, tmpEnv, "kernels", "prune", "--cache-dir", cache, "--all")
	if res.code != 0 || count() != 0 {
		t.Errorf("prune --all: exit %d, %d entries left", res.code, count())
	}
}

// TestBuildSource builds a kernel from Debian's linux-source tree with BTF
// off and virtio built in, boots it, and expects the btf check to report
// the absence of BTF as a failure (exit 1), not an error. Opt-in: a kernel
// build takes long. apt-get install linux-source-6.1 build-essential flex
// bison bc libelf-dev libssl-dev.
func TestBuildSource(t *testing.T) {
	integration(t)
	if os.Getenv("VMRUNNER_SLOW_TESTS") == "" {
		t.Skip("set VMRUNNER_SLOW_TESTS=1 to build a kernel from source")
	}
	matches, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(matches) == 0 {
		t.Fatal("no /usr/src/linux-source-*.tar.xz: apt-get install linux-source-6.1")
	}
	dir := filepath.Join(os.TempDir(), "vmrunner-linux-source")
	tree := filepath.Join(dir, strings.TrimSuffix(filepath.Base(matches[0]), ".tar.xz"))
	if _, err := os.Stat(filepath.Join(tree, "Kconfig")); err != nil {
		os.MkdirAll(dir, 0o755)
		if out, err := exec.Command("tar", "-C", dir, "-xf", matches[0]).CombinedOutput(); err != nil {
			t.Fatalf("unpack: %v\n%s", err, out)
		}
	}
	out := t.TempDir()
	m := writeFile(t, "matrix.yaml", `kernels:
  - {name: built, arch: x86_64, source: {build: {tree: "`+tree+`", config: [bpf, nobtf, kprobes, virtio, 9p, pvpanic]}}}
checks: [btf]
`)
	res := vmrunnerCLI(t, "run", "--out", out, m)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (btf fails)", res.code)
	}
	r, _ := readResults(t, out)
	if len(r.Results) != 1 || r.Results[0].Status != "fail" || !strings.Contains(r.Results[0].Message, "vmlinux BTF absent") ||
		r.Results[0].Source.Type != "build" {
		t.Errorf("results = %+v, want btf fail: vmlinux BTF absent", r.Results)
	}
	res = vmrunnerCLI(t, "kernels", "inspect", "--matrix", m, "--json", "built")
	var reps []kernels.Description
	if err := json.Unmarshal([]byte(res.stdout), &reps); err != nil || len(reps) != 1 || reps[0].BTF ||
		reps[0].Config["CONFIG_DEBUG_INFO_BTF"] != "n" || reps[0].Config["CONFIG_BPF_SYSCALL"] != "y" || !reps[0].PVH {
		t.Errorf("inspect: exit %d, %v: %+v", res.code, err, reps)
	}
}
