package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/kernels/kconfig"
)

// The `build:` source: a kernel built from a source tree with make.
//
// defconfig is made in a build directory of the cache (out-of-tree, O=, so
// the tree is not touched and rebuilds are incremental), the fragments are
// appended and `make olddefconfig` settles the dependencies. An option a
// fragment asks for that did not stick is an error naming it: Kconfig drops
// options silently when a dependency is missing. The kernel is cached by
// tree path, kernel version, arch and final .config; --refresh runs make
// again (incrementally) to pick up source edits.

//go:embed config/*.config
var configFragments embed.FS

// DefaultFragments are the fragments of a build: source without config:.
var DefaultFragments = []string{"bpf", "btf", "kprobes", "virtio", "9p", "pvpanic"}

// Fragments lists the names of the shipped config fragments.
func Fragments() []string {
	entries, _ := fs.ReadDir(configFragments, "config")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".config"))
	}
	return names
}

// fragment reads a shipped fragment by name or a fragment file by path.
func fragment(name string) ([]byte, error) {
	if filepath.IsAbs(name) {
		data, err := inputfile.ReadFile(context.Background(), name, maxConfigFile)
		if err != nil {
			return nil, inputError("build.config", err)
		}
		return data, nil
	}
	data, err := configFragments.ReadFile("config/" + name + ".config")
	if err != nil {
		return nil, fmt.Errorf("%w: build.config: no fragment %q; shipped fragments: %s (or give a path)", ErrNotFound, name, strings.Join(Fragments(), ", "))
	}
	return data, nil
}

// kernelArch is the ARCH= of make, and the image make leaves.
func kernelArch(a Arch) (karch, image, cross string) {
	if a == ARM64 {
		return "arm64", "arch/arm64/boot/Image", "aarch64-linux-gnu-"
	}
	return "x86", "arch/x86/boot/bzImage", "x86_64-linux-gnu-"
}

// resolveBuild resolves a build: source: it configures the tree for arch
// out of tree, and builds it unless the cache holds a kernel of the same
// tree, release and final .config.
func resolveBuild(ctx context.Context, spec BuildSpec, arch Arch, opts Options) (*Kernel, error) {
	tree, frags, err := buildInput(spec, arch)
	if err != nil {
		return nil, err
	}
	var pahole paholeTool
	if spec.Pahole {
		// Before the build, not after an hour of it.
		if pahole, err = findPahole(ctx); err != nil {
			return nil, err
		}
	}
	karch, image, cross := kernelArch(arch)
	env := []string{"ARCH=" + karch}
	if arch != Host() {
		if _, err := exec.LookPath(cross + "gcc"); err != nil {
			return nil, fmt.Errorf("build %s kernel: %s not found: apt-get install gcc-%s", arch, cross+"gcc", strings.TrimSuffix(cross, "-"))
		}
		env = append(env, "CROSS_COMPILE="+cross)
	}
	th := sha256.Sum256([]byte(tree))
	out := filepath.Join(opts.Cache.Dir, "build", fmt.Sprintf("%x-%s", th[:8], arch))
	unlock, err := opts.Cache.Lock(ctx, "build-"+filepath.Base(out))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("build kernel: %w", err)
	}
	b := &builder{tree: tree, out: out, env: env, log: opts.Logger}
	final, err := b.configure(ctx, frags, spec.Pahole)
	if err != nil {
		return nil, err
	}
	release, err := b.output(ctx, "-s", "kernelrelease")
	if err != nil {
		return nil, err
	}
	release = strings.TrimSpace(release)

	h := sha256.New()
	fmt.Fprintf(h, "build\n%s\n%s\n%s\n", tree, release, arch)
	h.Write(final)
	if spec.Pahole {
		fmt.Fprintf(h, "pahole %s\n", pahole.version)
	}
	key := hex.EncodeToString(h.Sum(nil))
	origin := Origin{Type: "build", Version: release, Files: []File{{Path: tree, SHA256: key}}}
	vmlinux := filepath.Join(out, "vmlinux")
	found := func(k *Kernel) *Kernel {
		k.Origin = origin
		if spec.Pahole && k.BTF != "" {
			k.BTFFrom = fmt.Sprintf("%s, made by pahole %s --btf_encode_detached from %s", filepath.Base(k.BTF), pahole.version, vmlinux)
		}
		return k
	}
	if !opts.Refresh {
		if k, err := opts.Cache.loadKernel(key); err == nil {
			return found(k), nil
		}
	}
	k, err := b.build(ctx, builtKernel{key: key, arch: arch, origin: origin, release: release, image: image, pahole: pahole, usePahole: spec.Pahole}, opts)
	if err != nil {
		return nil, err
	}
	return found(k), nil
}

// buildInput checks a build: source for arch and returns its tree, made
// absolute, and its configuration fragments, arch's last.
func buildInput(spec BuildSpec, arch Arch) (tree string, frags []byte, err error) {
	if spec.Arch != "" {
		a, err := ParseArch(spec.Arch)
		if err != nil {
			return "", nil, fmt.Errorf("%w: build.arch: %v", ErrBadInput, err)
		}
		if a != arch {
			return "", nil, fmt.Errorf("%w: build.arch is %s but the kernel is listed for %s; set the kernel's arch: to %s", ErrBadInput, a, arch, a)
		}
	}
	tree, err = filepath.Abs(spec.Tree)
	if err != nil || spec.Tree == "" {
		return "", nil, fmt.Errorf("%w: build: missing tree (a Linux source directory)", ErrBadInput)
	}
	for _, p := range []string{"Makefile", "Kconfig", "scripts/kconfig", "arch/x86", "arch/arm64"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			return "", nil, fmt.Errorf("%w: build.tree %s is not a Linux source tree (no %s)", ErrBadInput, tree, p)
		}
	}
	names := spec.Config
	if len(names) == 0 {
		names = DefaultFragments
	}
	names = append(slices.Clone(names), string(arch))
	for _, n := range names {
		data, err := fragment(n)
		if err != nil {
			return "", nil, err
		}
		frags = append(append(frags, data...), '\n')
	}
	return tree, frags, nil
}

// configure makes the build directory's .config: defconfig with frags on
// top, settled by olddefconfig. It returns the final .config, refused when
// an option asked for did not stick or, for pahole, when vmlinux would have
// no DWARF.
func (b *builder) configure(ctx context.Context, frags []byte, pahole bool) ([]byte, error) {
	if err := b.make(ctx, "defconfig"); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(b.out, ".config")
	def, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("build kernel: %w", err)
	}
	if err := os.WriteFile(cfgPath, append(append(def, '\n'), frags...), 0o644); err != nil {
		return nil, fmt.Errorf("build kernel: %w", err)
	}
	if err := b.make(ctx, "olddefconfig"); err != nil {
		return nil, err
	}
	final, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("build kernel: %w", err)
	}
	if err := checkStuck(b.tree, frags, final); err != nil {
		return nil, err
	}
	if pahole {
		if err := checkDWARF(final); err != nil {
			return nil, err
		}
	}
	return final, nil
}

// builtKernel is what build makes and caches under key.
type builtKernel struct {
	key       string
	arch      Arch
	origin    Origin
	release   string
	image     string // the image make leaves, relative to the build directory
	pahole    paholeTool
	usePahole bool // BTF made by pahole goes with the kernel
}

// build builds the configured tree's image and modules and puts the
// kernel in the cache: the image, .config, the modules installed, and BTF
// made by pahole when asked.
func (b *builder) build(ctx context.Context, bk builtKernel, opts Options) (*Kernel, error) {
	jobs := strconv.Itoa(runtime.NumCPU())
	start := time.Now()
	opts.Logger.Info("building kernel", "tree", b.tree, "arch", bk.arch, "release", bk.release, "dir", b.out)
	if err := b.make(ctx, "-j"+jobs, filepath.Base(bk.image), "modules"); err != nil {
		return nil, err
	}
	opts.Logger.Info("kernel built", "duration", time.Since(start).Round(time.Second))
	// The temporary directory of cacheKernel is only known inside fill:
	// modules are installed straight into it.
	if err := os.RemoveAll(opts.Cache.kernelDir(bk.key)); err != nil {
		return nil, fmt.Errorf("build kernel: %w", err)
	}
	return opts.Cache.cacheKernel(ctx, bk.key, "build of "+b.tree, bk.arch, bk.origin, opts.Logger, func(tmp string) (debContents, error) {
		c := debContents{Vmlinuz: "boot/vmlinuz", Config: "boot/config", Release: bk.release}
		if err := copyInput(ctx, filepath.Join(b.out, bk.image), filepath.Join(tmp, c.Vmlinuz), maxKernelFile); err != nil {
			return c, err
		}
		if err := copyInput(ctx, filepath.Join(b.out, ".config"), filepath.Join(tmp, c.Config), maxConfigFile); err != nil {
			return c, err
		}
		if err := b.make(ctx, "INSTALL_MOD_PATH="+tmp, "INSTALL_MOD_STRIP=1", "DEPMOD=/sbin/depmod", "modules_install"); err != nil {
			return c, err
		}
		mods := filepath.Join("lib", "modules", bk.release)
		if _, err := os.Stat(filepath.Join(tmp, mods)); err == nil {
			c.Modules = mods
			for _, l := range []string{"build", "source"} {
				os.Remove(filepath.Join(tmp, mods, l)) // links back into the tree
			}
		}
		if bk.usePahole {
			c.BTF = "boot/btf-" + bk.release
			start := time.Now()
			if err := bk.pahole.encode(ctx, filepath.Join(b.out, "vmlinux"), filepath.Join(tmp, c.BTF)); err != nil {
				return c, err
			}
			opts.Logger.Info("kernel BTF generated", "pahole", bk.pahole.version, "duration", time.Since(start).Round(time.Millisecond))
		}
		return c, nil
	})
}

// checkDWARF checks that a final .config gives vmlinux the DWARF pahole
// reads, and no BTF of its own.
func checkDWARF(final []byte) error {
	cfg, err := kconfig.Parse(bytes.NewReader(final))
	if err != nil {
		return fmt.Errorf("build kernel: %w", err)
	}
	switch {
	case cfg.Get("DEBUG_INFO_BTF") == "y":
		return fmt.Errorf("%w: build.pahole: the kernel has BTF of its own (CONFIG_DEBUG_INFO_BTF=y): drop pahole, or use the nobtf fragment", ErrBadInput)
	case cfg.Get("DEBUG_INFO") != "y":
		return fmt.Errorf("%w: build.pahole: vmlinux would have no DWARF for pahole (CONFIG_DEBUG_INFO is not set): add the dwarf fragment", ErrBadInput)
	case cfg.Get("DEBUG_INFO_REDUCED") == "y", cfg.Get("DEBUG_INFO_SPLIT") == "y":
		return fmt.Errorf("%w: build.pahole: vmlinux's DWARF would be reduced or split (CONFIG_DEBUG_INFO_REDUCED, CONFIG_DEBUG_INFO_SPLIT), pahole needs it whole: use the dwarf fragment", ErrBadInput)
	}
	return nil
}

// paholeTool is the pahole of the host (Debian's dwarves).
type paholeTool struct {
	path, version string
}

// findPahole finds pahole and checks that it can write detached BTF
// (--btf_encode_detached, the form btfhub and little-vm-helper ship).
func findPahole(ctx context.Context) (paholeTool, error) {
	path, err := exec.LookPath("pahole")
	if err != nil {
		return paholeTool{}, fmt.Errorf("build.pahole: pahole not found: apt-get install dwarves")
	}
	ver, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return paholeTool{}, fmt.Errorf("build.pahole: %s --version: %w", path, err)
	}
	help, _ := exec.CommandContext(ctx, path, "--help").Output()
	p := paholeTool{path: path, version: strings.TrimSpace(string(ver))}
	if !bytes.Contains(help, []byte("--btf_encode_detached")) {
		return paholeTool{}, fmt.Errorf("build.pahole: pahole %s cannot write detached BTF (no --btf_encode_detached): install dwarves 1.22 or later", p.version)
	}
	return p, nil
}

// encode writes the BTF of the ELF file elfPath's DWARF to out, as btfhub
// does (pahole --btf_encode_detached out vmlinux), and checks that it
// parses as BTF.
func (p paholeTool) encode(ctx context.Context, elfPath, out string) error {
	cmd := exec.CommandContext(ctx, p.path, "--btf_encode_detached", out, elfPath)
	cmd.WaitDelay = 10 * time.Second
	msg, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pahole: %w", ctx.Err())
		}
		lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
		return fmt.Errorf("pahole --btf_encode_detached %s: %w\n%s", elfPath, err, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	f, err := os.Open(out)
	if err != nil {
		return fmt.Errorf("pahole --btf_encode_detached %s: %w", elfPath, err)
	}
	defer f.Close()
	if _, err := btf.LoadSpecFromReader(f); err != nil {
		return fmt.Errorf("pahole --btf_encode_detached %s: the output is not BTF: %w", elfPath, err)
	}
	return nil
}

// checkStuck reports the options of the fragments that the final .config
// does not have, skipping options the tree's Kconfig does not define.
func checkStuck(tree string, frags, final []byte) error {
	want, err := kconfig.ParseOptions(bytes.NewReader(frags))
	if err != nil {
		return fmt.Errorf("%w: build.config: %v", ErrBadInput, err)
	}
	have, err := kconfig.Parse(bytes.NewReader(final))
	if err != nil {
		return fmt.Errorf("build kernel: %w", err)
	}
	known, err := kconfigSymbols(tree)
	if err != nil {
		return err
	}
	var lost []string
	for _, o := range want {
		if !known[o.Name] {
			continue
		}
		if got := have.Get(o.Name); got != o.Value {
			lost = append(lost, fmt.Sprintf("CONFIG_%s=%s (got %s)", o.Name, o.Value, got))
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w: config options did not stick after make olddefconfig: %s; a dependency is missing or the option cannot be set: check with make menuconfig",
			ErrBadInput, strings.Join(lost, ", "))
	}
	return nil
}

// kconfigSymbols lists the symbols the Kconfig files of tree define.
func kconfigSymbols(tree string) (map[string]bool, error) {
	syms := make(map[string]bool)
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "Documentation") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), "Kconfig") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (f[0] == "config" || f[0] == "menuconfig") {
				syms[f[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read Kconfig of %s: %w", tree, err)
	}
	return syms, nil
}

// builder runs make on a tree, out of tree.
type builder struct {
	tree, out string
	env       []string
	log       *slog.Logger
}

func (b *builder) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "make", append([]string{"-C", b.tree, "O=" + b.out}, args...)...)
	cmd.Env = append(os.Environ(), b.env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// make runs a target; a failure shows the end of make's output, whole in
// <out>/build.log.
func (b *builder) make(ctx context.Context, args ...string) error {
	cmd := b.cmd(ctx, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	b.log.Debug("make", "args", args)
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(b.out, "build.log"), buf.Bytes(), 0o644)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("make %s: %w", strings.Join(args, " "), ctx.Err())
		}
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("make: not found: apt-get install build-essential flex bison bc libelf-dev libssl-dev")
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		tail := strings.Join(lines[max(0, len(lines)-15):], "\n")
		return fmt.Errorf("make %s: %w (full log: %s)\n%s", strings.Join(args, " "), err, filepath.Join(b.out, "build.log"), tail)
	}
	return nil
}

// output runs make and returns its standard output.
func (b *builder) output(ctx context.Context, args ...string) (string, error) {
	out, err := b.cmd(ctx, args...).Output()
	if err != nil {
		return "", fmt.Errorf("make %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}
