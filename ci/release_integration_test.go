package ci

import (
	"archive/tar"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReleaseScript runs scripts/release.sh as the release workflow does
// (a dry run: nothing is published) and checks what it made: SHA256SUMS
// verifies, each archive holds vmrunner for its arch and the guest binaries
// beside it, the SBOM names the modules compiled in, the notes list commits.
// Then the action's build.sh installs the release from those files
// (file:// stands in for GitHub's download URLs), the installed vmrunner
// runs a VM, and an archive changed by one byte is refused.
func TestReleaseScript(t *testing.T) {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.0.0-releasetest"
	releases := t.TempDir()
	dist := filepath.Join(releases, "download", version)
	cmd := exec.Command(filepath.Join(root, "scripts/release.sh"), version, dist)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1765152000")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	t.Logf("release.sh %s in %s:\n%s", version, time.Since(start).Round(time.Second), out)

	sum := exec.Command("sha256sum", "-c", "SHA256SUMS")
	sum.Dir = dist
	if out, err := sum.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 3 {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	} else {
		t.Logf("sha256sum -c SHA256SUMS:\n%s", out)
	}

	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		dir := filepath.Join(t.TempDir(), arch)
		names := untar(t, filepath.Join(dist, "vmrunner-linux-"+arch+".tar.gz"), dir)
		top := "vmrunner-linux-" + arch + "/"
		for _, want := range []string{"vmrunner", "vmrunner-agent-x86_64", "vmrunner-agent-arm64", "vmrunner-workload-x86_64",
			"vmrunner-workload-arm64", "vmrunner-tools-x86_64/gosh", "vmrunner-tools-arm64/gosh", "README.md"} {
			if !slices.Contains(names, top+want) {
				t.Errorf("%s archive lacks %s (has %v)", arch, want, names)
			}
		}
		f, err := elf.Open(filepath.Join(dir, top, "vmrunner"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machine {
			t.Errorf("%s archive: vmrunner is for %v", arch, f.Machine)
		}
		f.Close()
	}

	var sbom struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name, VersionInfo string
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dist, "vmrunner.spdx.json"))
	if err != nil || json.Unmarshal(b, &sbom) != nil || sbom.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("vmrunner.spdx.json: %v\n%.500s", err, b)
	}
	var pkgs []string
	for _, p := range sbom.Packages {
		pkgs = append(pkgs, p.Name)
	}
	for _, want := range []string{"github.com/vmrunner/vmrunner", "github.com/spf13/cobra", "github.com/cilium/ebpf", "github.com/u-root/u-root", "golang.org/toolchain"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("the SBOM lacks %s", want)
		}
	}
	t.Logf("SBOM: %d packages", len(sbom.Packages))
	notes, err := os.ReadFile(filepath.Join(dist, "NOTES.md"))
	if err != nil || !strings.HasPrefix(string(notes), "## vmrunner "+version+"\n") || !strings.Contains(string(notes), "\n- ") {
		t.Errorf("NOTES.md: %v\n%.400s", err, notes)
	}

	// The action installs it: by tag, and as the latest release.
	if err := os.MkdirAll(filepath.Join(releases, "latest"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dist, filepath.Join(releases, "latest", "download")); err != nil {
		t.Fatal(err)
	}
	install := func(env ...string) (string, string, error) {
		bin := filepath.Join(t.TempDir(), "bin")
		cmd := exec.Command(filepath.Join(root, "scripts/action/build.sh"))
		cmd.Env = append(os.Environ(), append([]string{"BIN=" + bin, "VMRUNNER_RELEASES=file://" + releases, "GITHUB_OUTPUT="}, env...)...)
		out, err := cmd.CombinedOutput()
		return bin, string(out), err
	}
	for _, env := range [][]string{{"VERSION=" + version}, {"VERSION=", "ACTION_REF=main"}} {
		bin, out, err := install(env...)
		if err != nil || !strings.Contains(out, "vmrunner-linux-amd64.tar.gz: OK") || !strings.HasSuffix(out, "vmrunner "+version+"\n") {
			t.Errorf("build.sh %v: %v\n%s", env, err, out)
			continue
		}
		if env[0] != "VERSION=" {
			continue
		}
		// The installed vmrunner finds its agents beside it and runs a VM.
		matrix := filepath.Join(t.TempDir(), "m.yaml")
		os.WriteFile(matrix, []byte("kernels:\n  - {name: \"6.1\", arch: x86_64, source: {debian: {suite: bookworm}}}\nchecks:\n  - btf: {require: [task_struct]}\n"), 0o644)
		run := exec.Command(filepath.Join(bin, "vmrunner"), "run", matrix, "--out", t.TempDir())
		run.Env = append(os.Environ(), "VMRUNNER_AGENT_DIR=")
		if out, err := run.CombinedOutput(); err != nil || !strings.Contains(string(out), "checks: 1 pass, 0 fail, 0 error, 0 skip") {
			t.Errorf("the released vmrunner's run: %v\n%s", err, out)
		} else {
			t.Logf("the released vmrunner ran 6.1/x86_64 btf:\n%s", out)
		}
	}

	// One byte changed: refused, nothing installed.
	archive := filepath.Join(dist, "vmrunner-linux-amd64.tar.gz")
	f, err := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	bin, changed, err := install("VERSION=" + version)
	if err == nil || !strings.Contains(changed, "vmrunner-linux-amd64.tar.gz of release "+version+" does not match its SHA256SUMS: refusing to install it") {
		t.Errorf("a changed archive: %v\n%s", err, changed)
	}
	if _, err := os.Stat(filepath.Join(bin, "vmrunner")); err == nil {
		t.Errorf("a changed archive was installed")
	}
}

// untar extracts a .tar.gz into dir and returns the names it held.
func untar(t *testing.T, path, dir string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, os.FileMode(h.Mode)&0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
}
