package agentbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Module is the path of the module the guest binaries come from.
const Module = "github.com/vmrunner/vmrunner"

// ShellTools are the u-root commands built into vmrunner-tools-<arch>/ (the
// Makefile's GUEST_TOOLS; a test keeps the two equal).
var ShellTools = []string{"gosh", "ls", "cat", "dmesg", "mount", "ip"}

// ErrNoGo means there is no Go toolchain to build the guest binaries with.
var ErrNoGo = errors.New("no go command on PATH to build the guest agents")

// Source is where the guest binaries are built from.
type Source struct {
	Version string // module version, or "(devel)"
	Dir     string // module root: the module cache's copy or a checkout
	Key     string // names the cache directory: the version, or devel-<hash>
}

// goArch maps vmrunner's arch names to GOARCH.
var goArch = map[string]string{"x86_64": "amd64", "arm64": "arm64"}

// Ensure returns the directory holding vmrunner-agent-<arch>,
// vmrunner-workload-<arch> and vmrunner-tools-<arch>/ under cacheDir,
// building them first when this version has none yet. progress gets one line
// before a build and one after.
func Ensure(ctx context.Context, cacheDir, arch string, progress io.Writer) (string, error) {
	if _, ok := goArch[arch]; !ok {
		return "", fmt.Errorf("build guest agent: unknown arch %q", arch)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: install Go (https://go.dev/dl/) and run vmrunner again, "+
			"or build them in a clone with `make build` and pass --agent-dir", ErrNoGo)
	}
	src, err := FindSource(ctx, goCmd)
	if err != nil {
		return "", err
	}
	return Build(ctx, goCmd, src, cacheDir, arch, progress)
}

// Ready reports whether dir holds everything Build puts there for arch.
func ready(dir, arch string) bool {
	for _, p := range outputs(dir, arch) {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func outputs(dir, arch string) []string {
	ps := []string{filepath.Join(dir, "vmrunner-agent-"+arch), filepath.Join(dir, "vmrunner-workload-"+arch)}
	for _, t := range ShellTools {
		ps = append(ps, filepath.Join(dir, "vmrunner-tools-"+arch, t))
	}
	return ps
}

// Build builds src's guest binaries for arch into
// cacheDir/agents/<src.Key>/<arch> unless they are there already.
func Build(ctx context.Context, goCmd string, src Source, cacheDir, arch string, progress io.Writer) (string, error) {
	base := filepath.Join(cacheDir, "agents", src.Key)
	dir := filepath.Join(base, arch)
	if ready(dir, arch) {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("build guest agent: %w", err)
	}
	lock := flock.New(filepath.Join(base, "."+arch+".lock"))
	if ok, err := lock.TryLockContext(ctx, 200*time.Millisecond); err != nil || !ok {
		return "", fmt.Errorf("build guest agent: lock %s: %w", lock.Path(), errors.Join(err, ctx.Err()))
	}
	defer func() { _ = lock.Unlock() }()
	if ready(dir, arch) { // another process built it while we waited
		return dir, nil
	}
	tmp, err := os.MkdirTemp(base, "."+arch+"-")
	if err != nil {
		return "", fmt.Errorf("build guest agent: %w", err)
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	fmt.Fprintf(progress, "vmrunner: first use of %s@%s on %s: building the guest agent, workload runner and shell tools with %s (once per version)...\n",
		Module, src.Version, arch, goVersion(ctx, goCmd))
	pkgs := []string{"./cmd/vmrunner-agent", "./cmd/vmrunner-workload"}
	for _, t := range ShellTools {
		pkgs = append(pkgs, "github.com/u-root/u-root/cmds/core/"+t)
	}
	ldflags := "-s -w"
	if !strings.HasPrefix(src.Key, "devel-") {
		ldflags += " -X " + Module + "/internal/version.Version=" + src.Version
	}
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = src.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goArch[arch],
		"GOWORK=off", "GOFLAGS=-mod=readonly")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build guest agent for %s from %s: %w\n%s", arch, src.Dir, err, strings.TrimSpace(out.String()))
	}
	if err := os.Mkdir(filepath.Join(tmp, "vmrunner-tools-"+arch), 0o755); err != nil {
		return "", fmt.Errorf("build guest agent: %w", err)
	}
	moves := map[string]string{"vmrunner-agent": "vmrunner-agent-" + arch, "vmrunner-workload": "vmrunner-workload-" + arch}
	for _, t := range ShellTools {
		moves[t] = filepath.Join("vmrunner-tools-"+arch, t)
	}
	for from, to := range moves {
		if err := os.Rename(filepath.Join(tmp, from), filepath.Join(tmp, to)); err != nil {
			return "", fmt.Errorf("build guest agent: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil { // a partial directory from before this package existed
		return "", fmt.Errorf("build guest agent: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("build guest agent: %w", err)
	}
	fmt.Fprintf(progress, "vmrunner: built the %s guest binaries in %s into %s\n", arch, time.Since(start).Round(100*time.Millisecond), dir)
	return dir, nil
}

func goVersion(ctx context.Context, goCmd string) string {
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOVERSION").Output()
	if err != nil {
		return "go"
	}
	return strings.TrimSpace(string(out))
}

// FindSource says where the running vmrunner's guest binaries come from:
// its module version in the module cache, or the checkout it was built in.
func FindSource(ctx context.Context, goCmd string) (Source, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != Module {
		return Source{}, fmt.Errorf("build guest agent: this binary has no %s build info: build it with `make build` and pass --agent-dir", Module)
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" && !strings.Contains(v, "+dirty") {
		dir, err := moduleDir(ctx, goCmd, v)
		if err == nil {
			return Source{Version: v, Dir: dir, Key: v}, nil
		}
		// A VCS-stamped version of an unpublished commit: try the checkout.
		if co, cerr := checkout(); cerr == nil {
			return devel(v, co)
		}
		return Source{}, err
	}
	co, err := checkout()
	if err != nil {
		return Source{}, fmt.Errorf("build guest agent: vmrunner %s was built from a checkout that is not here any more: run `make build` in the checkout: %w", v, err)
	}
	return devel(v, co)
}

func devel(v, dir string) (Source, error) {
	exe, err := os.Executable()
	if err != nil {
		return Source{}, fmt.Errorf("build guest agent: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return Source{}, fmt.Errorf("build guest agent: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Source{}, fmt.Errorf("build guest agent: hash %s: %w", exe, err)
	}
	if v == "" {
		v = "(devel)"
	}
	return Source{Version: v, Dir: dir, Key: "devel-" + hex.EncodeToString(h.Sum(nil))[:16]}, nil
}

// moduleDir returns the module cache's directory of Module@v, downloading it
// when the cache was cleaned since `go install`.
func moduleDir(ctx context.Context, goCmd, v string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", Module+"@"+v)
	cmd.Dir = os.TempDir() // outside any module or workspace
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr == nil && m.Error != "" {
		return "", fmt.Errorf("build guest agent: find %s@%s in the module cache: %s", Module, v, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("build guest agent: go mod download %s@%s: %w", Module, v, err)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("build guest agent: go mod download %s@%s gave no directory", Module, v)
	}
	return m.Dir, nil
}

// checkout finds the source tree this package was compiled from, which
// builds without -trimpath record; it must still hold the module's go.mod.
func checkout() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", errors.New("the binary records no source path (built with -trimpath)")
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // internal/agentbuild/x.go
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(data, []byte("module "+Module+"\n")) {
		return "", fmt.Errorf("%s is not a checkout of %s", root, Module)
	}
	return root, nil
}
