package agentbuild

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/vmrunner/vmrunner/kernels"
)

// TestGoInstall is what a new user does: `go install
// github.com/vmrunner/vmrunner/cmd/vmrunner@version` into an empty GOBIN,
// then `vmrunner run` with no agents anywhere. The version is this checkout's
// working tree served as a pseudo-version by a file:// module proxy; the
// run is one VM (6.1 x86_64, the btf check) on the cached kernel with an
// empty agent cache, so the guest binaries are built on first use.
func TestGoInstall(t *testing.T) {
	if os.Getenv("VMRUNNER_SKIP_INTEGRATION") != "" {
		t.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: run `make install-deps` (or set VMRUNNER_SKIP_INTEGRATION=1)")
	}
	root, err := checkout()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	version := serveCheckout(t, root, filepath.Join(tmp, "proxy"))

	goenv := func(k string) string {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		return strings.TrimSpace(string(out))
	}
	// A module cache of its own, filled from the user's (as a proxy), so
	// this test leaves no pseudo-version behind in it.
	modcache := filepath.Join(tmp, "modcache")
	gobin := filepath.Join(tmp, "gobin")
	env := append(os.Environ(),
		"GOPROXY=file://"+filepath.Join(tmp, "proxy")+",file://"+filepath.Join(goenv("GOMODCACHE"), "cache", "download")+","+goenv("GOPROXY"),
		"GONOSUMDB="+Module, "GOMODCACHE="+modcache, "GOBIN="+gobin, "GOFLAGS=-mod=mod", "GOWORK=off")
	t.Cleanup(func() {
		c := exec.Command("go", "clean", "-modcache")
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("go clean -modcache: %v\n%s", err, out)
		}
	})
	install := exec.Command("go", "install", Module+"/cmd/vmrunner@"+version)
	install.Dir, install.Env = tmp, env
	start := time.Now()
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	t.Logf("go install %s: %s", version, time.Since(start).Round(time.Second))
	if ents, _ := os.ReadDir(gobin); len(ents) != 1 {
		t.Fatalf("GOBIN holds %d files, want vmrunner alone", len(ents))
	}

	out, err := exec.Command(filepath.Join(gobin, "vmrunner"), "version").Output()
	if want := "vmrunner " + version + "\n"; err != nil || string(out) != want {
		t.Errorf("vmrunner version = %q, %v; want %q", out, err, want)
	}

	cache := sharedKernels(t, filepath.Join(tmp, "cache"))
	run := func() string {
		cmd := exec.Command(filepath.Join(gobin, "vmrunner"), "run", filepath.Join(root, "matrix.yaml"),
			"--kernel", "6.1", "--arch", "x86_64", "--check", "btf", "--no-snapshot", "--out", filepath.Join(tmp, "results"))
		cmd.Dir = tmp
		cmd.Env = append(env, "VMRUNNER_CACHE="+cache, "VMRUNNER_AGENT_DIR=")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("vmrunner run: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	first := run()
	built := regexp.MustCompile(`vmrunner: built the x86_64 guest binaries in (\S+) into (\S+)`).FindStringSubmatch(first)
	if built == nil {
		t.Fatalf("first run printed no first-use build:\n%s", first)
	}
	t.Logf("first-use build of the x86_64 guest binaries: %s", built[1])
	if want := filepath.Join(cache, "agents", version, "x86_64"); built[2] != want {
		t.Errorf("built into %s, want %s", built[2], want)
	}
	if second := run(); strings.Contains(second, "first use") {
		t.Errorf("second run built again:\n%s", second)
	}
}

// serveCheckout writes a file:// module proxy under dir serving root's
// working tree (tracked and untracked, not ignored files) as a
// pseudo-version of Module, and returns that version.
func serveCheckout(t *testing.T, root, dir string) string {
	t.Helper()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("git %s in %s: %v (the test serves a git checkout)", strings.Join(args, " "), root, err)
		}
		return string(out)
	}
	rev := strings.TrimSpace(git("rev-parse", "--short=12", "HEAD"))
	now := time.Now().UTC()
	version := "v0.0.0-" + now.Format("20060102150405") + "-" + rev
	var files []modzip.File
	for _, name := range strings.Split(git("ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00") {
		if name == "" {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a link the zip cannot hold
		}
		files = append(files, diskFile{name: name, path: p})
	}
	at := filepath.Join(dir, filepath.FromSlash(Module), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	if err := modzip.Create(&zip, module.Version{Path: Module, Version: version}, files); err != nil {
		t.Fatalf("module zip: %v", err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(map[string]any{"Version": version, "Time": now})
	for name, data := range map[string][]byte{
		"list": []byte(version + "\n"), version + ".info": info, version + ".mod": mod, version + ".zip": zip.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("served %s as %s (%d files, %d KB zip)", root, version, len(files), zip.Len()/1024)
	return version
}

type diskFile struct{ name, path string }

func (f diskFile) Path() string                 { return f.name }
func (f diskFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.path) }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.path) }

// sharedKernels makes a cache directory at dir that shares the user's
// downloaded kernels (warm) and has its own agents/ and initramfs/ (cold).
func sharedKernels(t *testing.T, dir string) string {
	t.Helper()
	user, err := kernels.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"blobs", "kernels", "index", "locks"} {
		if err := os.MkdirAll(filepath.Join(user, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(user, sub), filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
