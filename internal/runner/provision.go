package runner

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/servers"
	"github.com/vmrunner/vmrunner/internal/vm"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/kernels/kconfig"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// Provisioned is a target ready to boot: its kernel, resolved to what the
// matrix's lock pinned, its initramfs and the VM's size.
type Provisioned struct {
	Target    matrix.Target
	Kernel    *kernels.Kernel
	Agent     string // the guest agent packed into Initramfs
	Initramfs string
	MemoryMiB int
	CPUs      int
	// Files are the checks' data files, sent with the plan, and a
	// program's shares when they travel over the channel.
	Files []vm.PlanFile
	// Dirs are the shares' directories, made before the files arrive.
	Dirs []string
	// PerRun: Initramfs holds files of this run only (a program's shares),
	// so that a snapshot of it would serve no other run.
	PerRun bool
}

// Provisioner makes the targets of one matrix ready to boot. run, repro,
// repro --shell, bench and the kernels commands all provision targets through
// it, so that they boot the same kernels: the lock file next to the matrix
// is read once and every kernel resolves to its pin.
type Provisioner struct {
	Matrix   *matrix.Matrix
	Cache    *kernels.Cache
	Lock     *kernels.LockFile // nil without a lock file
	AgentDir string            // see FindAgent
	Refresh  bool              // re-read mirror indexes (kernels.Options.Refresh)
	Log      *slog.Logger
	// Extra, when set, lists files every target gets on top of those of
	// the checks: repro --shell's tools and object. agent is the path of
	// the target's guest agent.
	Extra func(agent string, a kernels.Arch) ([]matrix.GuestFile, error)
	// RunDir is where per-run archives are written (see Shares); it must
	// be set when a check of Matrix has shares that do not travel over the
	// channel.
	RunDir string
	// SharesOverChannel sends a program's shares with the plan rather than
	// in a per-run archive, so that the VM's initramfs, and its snapshot,
	// are those of every other run (see shareFiles).
	SharesOverChannel bool
}

// NewProvisioner opens the cache of opts (default kernels.DefaultCacheDir)
// and reads the lock file of opts.Matrix. A lock file that does not read is
// bad input.
func NewProvisioner(opts Options) (*Provisioner, error) {
	log := cmp.Or(opts.Log, slog.Default())
	cache, err := kernels.OpenCache(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	lock, err := kernels.LoadLock(opts.Matrix.Path, opts.Matrix.LockKernels(), log)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", matrix.ErrBadMatrix, err)
	}
	if err := checkGuestFiles(opts.Matrix); err != nil {
		return nil, err
	}
	return &Provisioner{Matrix: opts.Matrix, Cache: cache, Lock: lock, AgentDir: opts.AgentDir, Refresh: opts.Refresh, Log: log}, nil
}

// ProvisionError is a target that could not be provisioned; Kind is the error
// kind of its records. It matches ErrBadMatrix when the kind is bad input.
type ProvisionError struct {
	Kind results.ErrorKind
	Err  error
}

func (e *ProvisionError) Error() string { return e.Err.Error() }
func (e *ProvisionError) Unwrap() error { return e.Err }

// Is makes a bad-input provision error an ErrBadMatrix (exit code 2).
func (e *ProvisionError) Is(target error) bool {
	return target == matrix.ErrBadMatrix && e.Kind == results.KindBadInput
}

// Kernel resolves the kernel of t, to its pin when the lock has one.
// Offline resolves from the cache alone (kernels.ErrNotCached otherwise).
func (p *Provisioner) Kernel(ctx context.Context, t matrix.Target, offline bool) (*kernels.Kernel, error) {
	return kernels.Resolve(ctx, t.Kernel.Name, t.Kernel.Source, t.Arch, kernels.Options{
		Cache: p.Cache, Refresh: p.Refresh, Offline: offline, Logger: p.Log.With("vm", t.Label()),
		Pin: p.Lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source),
	})
}

// Provision resolves t's kernel, builds its initramfs (the agent, the
// kernel's virtio modules, the files the checks need, the workload runner
// when a check runs in it, and Extra's files) and settles the VM's memory
// and CPUs (the kernel's own, else the matrix defaults). phase, when set, is
// told "kernel" and "initramfs" as each step starts. Errors are
// *ProvisionError.
func (p *Provisioner) Provision(ctx context.Context, t matrix.Target, phase func(string)) (*Provisioned, error) {
	fail := func(kind results.ErrorKind, err error) (*Provisioned, error) {
		if ctx.Err() != nil {
			kind = results.KindInterrupted
		}
		return nil, &ProvisionError{Kind: kind, Err: err}
	}
	if phase != nil {
		phase("kernel")
	}
	k, err := p.Kernel(ctx, t, false)
	if err != nil {
		kind := results.KindKernel
		if errors.Is(err, kernels.ErrBadInput) {
			kind = results.KindBadInput
		}
		return fail(kind, err)
	}
	agent, err := FindAgent(ctx, p.AgentDir, p.Cache.Dir, t.Arch)
	if err != nil {
		return fail(results.KindInitramfs, err)
	}
	if phase != nil {
		phase("initramfs")
	}
	extra := matrix.ExtraFiles(p.Matrix)
	realServers := false
	if runner, err := workloadRunner(p.Matrix, agent, t.Arch); err != nil {
		return fail(results.KindInitramfs, err)
	} else if runner != nil {
		extra = append(extra, *runner)
		// The workload's real PostgreSQL and Redis, with their libraries.
		files, err := servers.Files(ctx, p.Cache, t.Arch, p.Log.With("vm", t.Label()))
		if err != nil {
			return fail(results.KindInitramfs, err)
		}
		extra = append(extra, files...)
		realServers = true
	}
	if k.BTF != "" {
		files, err := externalBTFFiles(p.Cache.Dir, k)
		if err != nil {
			return fail(results.KindInitramfs, err)
		}
		extra = append(extra, files...)
	}
	// A kernel with no virtio console speaks over the serial console, which
	// carries the host's bytes at some 19 KB/s under TCG: the checks' data
	// files go into its initramfs rather than with the plan (its snapshot
	// is then its matrix's own).
	console := noVirtioConsole(k)
	if console {
		for _, f := range matrix.DataFiles(p.Matrix) {
			extra = append(extra, f.InitramfsFile())
		}
	}
	if p.Extra != nil {
		more, err := p.Extra(agent, t.Arch)
		if err != nil {
			return fail(results.KindInitramfs, err)
		}
		for _, f := range more {
			extra = append(extra, f.InitramfsFile())
		}
	}
	initrd, err := initramfs.Build(ctx, initramfs.Options{Kernel: k, Agent: agent, Modules: initramfs.DefaultModules, OnDemand: matrix.OnDemandModules(p.Matrix), CacheDir: p.Cache.Dir, Extra: extra})
	if err != nil {
		return fail(results.KindInitramfs, fmt.Errorf("build initramfs: %w", err))
	}
	var files []vm.PlanFile
	for _, f := range matrix.DataFiles(p.Matrix) {
		if console {
			break
		}
		pf, err := vm.OpenPlanFile(f.Host, f.Guest, false)
		if err != nil {
			return fail(results.KindBadInput, fmt.Errorf("file for the guest: %w", err))
		}
		files = append(files, pf)
	}
	var dirs []string
	perRun := false
	if run := p.Matrix.SharedFiles(t.Arch); len(run) > 0 {
		sent := false
		switch {
		case p.SharesOverChannel && console:
			// A program and its libraries would take minutes over the
			// serial console.
			p.Log.Info("a program's files go into a per-run archive: the VM boots", "vm", t.Label(), "why", "the kernel has no virtio console: the serial console would carry them")
		case p.SharesOverChannel:
			sf, sd, err := vm.ShareFiles(p.Matrix, t.Arch, run, files)
			if err == nil {
				files, dirs, sent = append(files, sf...), sd, true
			} else {
				p.Log.Info("a program's files go into a per-run archive: the VM boots", "vm", t.Label(), "why", err)
			}
		}
		if !sent {
			perRun = true
			if p.RunDir == "" {
				return fail(results.KindInitramfs, errors.New("build initramfs: no directory for the per-run archive"))
			}
			dst := filepath.Join(p.RunDir, t.Dirname()+".cpio")
			if err := initramfs.WriteRun(ctx, dst, initrd, run); err != nil {
				return fail(results.KindInitramfs, err)
			}
			initrd = dst
		}
	}
	pt := &Provisioned{
		Target: t, Kernel: k, Agent: agent, Initramfs: initrd, Files: files, Dirs: dirs, PerRun: perRun,
		MemoryMiB: cmp.Or(t.Kernel.MemoryMiB, p.Matrix.Defaults.MemoryMiB),
		CPUs:      cmp.Or(t.Kernel.CPUs, p.Matrix.Defaults.CPUs),
	}
	if realServers && pt.MemoryMiB > 0 && pt.MemoryMiB < servers.MinMemoryMiB {
		p.Log.Info("the workload's real servers need more memory: the VM gets it", "vm", t.Label(),
			"memory_mib", servers.MinMemoryMiB, "asked", pt.MemoryMiB)
		pt.MemoryMiB = servers.MinMemoryMiB
	}
	if err := pt.checkMemory(); err != nil {
		return fail(results.KindBadInput, err)
	}
	return pt, nil
}

// externalBTFFiles are the files that give the guest k's external BTF
// (guest/kernelbtf reads them): the raw BTF and what says where it came
// from, written into the cache under its own hash.
func externalBTFFiles(cacheDir string, k *kernels.Kernel) ([]initramfs.File, error) {
	info, err := json.Marshal(protocol.ExternalBTFInfo{From: k.BTFFrom, Replaces: k.BTFReplaces})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(info)
	path := filepath.Join(cacheDir, "btf", "info-"+hex.EncodeToString(sum[:8])+".json")
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, info) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("pack external BTF: %w", err)
		}
		if err := results.WriteFileAtomic(path, info); err != nil {
			return nil, fmt.Errorf("pack external BTF: %w", err)
		}
	}
	return []initramfs.File{
		{Path: protocol.ExternalBTFPath, Source: k.BTF},
		{Path: protocol.ExternalBTFInfoPath, Source: path},
	}, nil
}

// unpackOverhead is the guest memory that is not the initramfs's: the
// kernel, its page tables and the agent running.
const unpackOverhead = 128 << 20

// checkMemory refuses an initramfs the VM cannot hold: the kernel unpacks
// the archive into memory while the archive is still there, so it needs
// twice its size and the kernel's own, and the plan's files live in memory
// too. Without this, QEMU's "initrd too large" or the guest running out of
// memory would be the only word of it.
func (pt *Provisioned) checkMemory() error {
	fi, err := os.Stat(pt.Initramfs)
	if err != nil {
		return err
	}
	need := 2*fi.Size() + unpackOverhead
	for _, f := range pt.Files {
		need += f.Spec.Size
	}
	mem := int64(pt.MemoryMiB) << 20
	if mem > 0 && need > mem {
		return fmt.Errorf("the initramfs of %s is %s (the agent, the kernel's modules and the checks' files) and a VM of %d MiB cannot unpack it: give kernel %s memory: %dM or more, or put fewer or smaller files into it",
			pt.Target.Label(), inputfile.Size(fi.Size()), pt.MemoryMiB, pt.Target.Kernel.Name, (need+(1<<20)-1)>>20)
	}
	// The guest's root file system, where the initramfs is unpacked and
	// the plan's files are received, is a tmpfs of half the VM's memory.
	// Past it the guest's writes fail mid-transfer ("bad address" on a
	// mapped file), so the set is refused here.
	var files int64
	for _, f := range pt.Files {
		files += f.Spec.Size
	}
	if held := fi.Size() + files; mem > 0 && files > 0 && 2*held+rootfsSlack > mem {
		return fmt.Errorf("the files sent to %s total %s, and with its initramfs's %s they do not fit the guest's root file system, a tmpfs of half its %d MiB: give kernel %s memory: %dM or more, or send fewer or smaller files",
			pt.Target.Label(), inputfile.Size(files), inputfile.Size(fi.Size()), pt.MemoryMiB, pt.Target.Kernel.Name, (2*held+rootfsSlack+(1<<20)-1)>>20)
	}
	return nil
}

// rootfsSlack is the memory the kernel keeps for itself, which the root
// tmpfs's half is taken from.
const rootfsSlack = 64 << 20

// checkGuestFiles checks the host files the checks of m put into every VM,
// before anything is provisioned: a file a matrix names must resolve (links
// followed) inside the matrix's directory tree (filesRoot), so that a
// matrix from elsewhere cannot pack /etc/shadow or ~/.ssh into an archive;
// files named on the command line may be anywhere. Every file must be a
// regular file within initramfs's bounds. Problems are bad input.
func checkGuestFiles(m *matrix.Matrix) error {
	root, err := filesRoot(m.Path)
	if err != nil {
		return fmt.Errorf("%w: matrix directory: %v", matrix.ErrBadMatrix, err)
	}
	var files []initramfs.File
	for _, c := range m.Checks {
		for _, f := range c.Files {
			files = append(files, f.InitramfsFile())
			if f.Named {
				continue
			}
			real, err := filepath.EvalSymlinks(f.Host)
			if err == nil {
				real, err = filepath.Abs(real)
			}
			if err != nil {
				return fmt.Errorf("%w: check %s: %v", matrix.ErrBadMatrix, c.Name, err)
			}
			if rel, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(rel) {
				named := f.Host
				if real != f.Host {
					named += " (" + real + ")"
				}
				return fmt.Errorf("%w: check %s: %s is outside the matrix's directory %s: a matrix may only put files from its own directory (or its project's) into a VM; copy it there, or name it on the command line (vmrunner repro --object)",
					matrix.ErrBadMatrix, c.Name, named, root)
			}
		}
	}
	if _, err := initramfs.CheckFiles(files); err != nil {
		return fmt.Errorf("%w: %v", matrix.ErrBadMatrix, err)
	}
	return nil
}

// filesRoot is the directory whose files a matrix may put into a VM: the
// matrix's own directory, or the project it is part of when it sits in one:
// the nearest enclosing directory holding .git or go.mod, below the user's
// home directory (a home kept in git is no project). A matrix in a
// project's matrices/ or ci/ directory so reaches the project's build
// output and test data, and a matrix copied from elsewhere reaches nothing
// of the user's.
func filesRoot(matrixPath string) (string, error) {
	dir := "."
	if matrixPath != "" {
		dir = filepath.Dir(matrixPath)
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return "", err
	}
	home, _ := os.UserHomeDir()
	if home != "" {
		if h, err := filepath.EvalSymlinks(home); err == nil {
			home = h
		}
	}
	for d := dir; d != home && d != filepath.Dir(d); d = filepath.Dir(d) {
		for _, marker := range []string{".git", "go.mod"} {
			if _, err := os.Lstat(filepath.Join(d, marker)); err == nil {
				return d, nil
			}
		}
	}
	return dir, nil
}

// noVirtioConsole reports whether k is known to have no virtio console, so
// that its agent will speak over the serial console (guest/channel_linux.go):
// its config says CONFIG_VIRTIO_CONSOLE is not set, or says =m (or is not
// there) and its module tree has no virtio_console. A kernel of which
// neither is known (no config, no module tree) is taken to have one.
func noVirtioConsole(k *kernels.Kernel) bool {
	if k.Config != "" {
		if cfg, err := kconfig.ReadFile(k.Config); err == nil {
			// Get says "n" for an option the config lacks: only a config
			// that says so is believed.
			if _, listed := cfg["VIRTIO_CONSOLE"]; listed {
				switch cfg.Get("VIRTIO_CONSOLE") {
				case "y":
					return false
				case "n":
					return true
				}
			}
		}
	}
	if k.Modules == "" {
		return false
	}
	has, err := initramfs.HasModule(k.Modules, "virtio_console")
	return err == nil && !has
}
