package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/version"
	"github.com/vmrunner/vmrunner/internal/vm"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

// Options configure a run.
type Options struct {
	Matrix   *matrix.Matrix
	OutDir   string // results base directory; default "results"
	Parallel int    // VMs at once; default the number of cores
	Accel    qemu.Accel
	AgentDir string // where the guest agents are; see FindAgent
	CacheDir string // kernel and initramfs cache; default kernels.DefaultCacheDir
	Refresh  bool   // re-read mirror indexes instead of using cached resolutions
	Profile  qemu.Profile
	Append   []string // extra kernel command line words
	// Retries is how many times a VM is booted again after an
	// infrastructure failure (QEMU failing to start, boot timeout).
	Retries int
	// BootTimeout overrides BootTimeout(accel) when set.
	BootTimeout time.Duration
	Log         *slog.Logger
	// Progress, when set, is told when each VM starts and ends.
	Progress func(t matrix.Target, phase string, recs []results.Record)
	// Shard, when the matrix is one shard of a plan, is recorded in results.json.
	Shard *results.Shard
	// NoSnapshot boots every VM (see snapshot.go); so does the matrix's
	// defaults.snapshot: false.
	NoSnapshot bool
	// watch keeps the one VM of a repro --watch up (ReproWatch).
	watch *watchHooks
	// Output, when set, is told what the programs of test checks write, as
	// it arrives (vmrunner exec prints it).
	Output func(t matrix.Target, o protocol.Output)
	// Extra, when set, lists more files for every target (Provisioner.Extra).
	Extra func(agent string, a kernels.Arch) ([]matrix.GuestFile, error)
}

// snapshots reports whether the run's VMs are restored from snapshots
// (and saved when they have none).
func (o Options) snapshots() bool {
	return !o.NoSnapshot && !o.Matrix.Defaults.NoSnapshot && o.Profile == qemu.ProfileFast
}

// Result is the outcome of a run.
type Result struct {
	Dir      string
	Report   results.Report
	ExitCode int
	// Err combines the infrastructure and input errors of every VM.
	Err error
}

// BootTimeout is how long the guest agent has to say ready after QEMU starts.
func BootTimeout(a qemu.Accel) time.Duration {
	if a == qemu.AccelKVM {
		return 30 * time.Second
	}
	// TCG boots take 2–6 s on an idle machine; leave room for a loaded CI
	// runner with every core busy.
	return 120 * time.Second
}

// Run executes a matrix: every target in parallel under opts.Parallel.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.OutDir == "" {
		opts.OutDir = "results"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.NumCPU()
	}
	if opts.Accel == "" {
		opts.Accel = qemu.AccelAuto
	}
	if opts.Profile == "" {
		opts.Profile = qemu.ProfileFast
	}
	prep, err := NewProvisioner(opts)
	if err != nil {
		return nil, err
	}
	prep.Extra = opts.Extra
	// With snapshots, a program's files (vmrunner exec, the test check)
	// travel over the channel, so that its VM is restored like any other;
	// without, they are packed into a per-run archive, which Linux unpacks
	// faster than any channel carries them.
	prep.SharesOverChannel = opts.snapshots()
	if opts.Matrix.HasShares() {
		// Per-run archives live as long as the run.
		if prep.RunDir, err = os.MkdirTemp("", "vmrunner-run-"); err != nil {
			return nil, fmt.Errorf("create run directory: %w", err)
		}
		defer os.RemoveAll(prep.RunDir)
	}
	targets := opts.Matrix.Targets()
	// An impossible --accel is a usage error: refuse before booting anything.
	accels := map[kernels.Arch]qemu.Accel{}
	for _, t := range targets {
		if _, ok := accels[t.Arch]; ok {
			continue
		}
		a, err := qemu.ResolveAccel(opts.Accel, t.Arch)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", matrix.ErrBadMatrix, err)
		}
		accels[t.Arch] = a
	}

	host, _ := os.Hostname()
	started := time.Now()
	store, err := results.NewStore(opts.OutDir, results.RunInfo{
		ID: started.UTC().Format("20060102-150405") + fmt.Sprintf("-%04x", os.Getpid()&0xffff), Matrix: opts.Matrix.Path,
		Version: version.Version, Host: host, HostArch: string(kernels.Host()), Accel: string(opts.Accel),
		Parallel: opts.Parallel, Started: started.UTC(), Targets: plannedTargets(targets), Shard: opts.Shard,
	})
	if err != nil {
		return nil, err
	}

	var (
		errs multierror.Error
		mu   sync.Mutex
	)
	g := new(errgroup.Group)
	g.SetLimit(opts.Parallel)
	for _, t := range targets {
		g.Go(func() error {
			recs, err := runTarget(ctx, opts, prep, store, t, accels[t.Arch])
			if addErr := store.Add(recs...); addErr != nil {
				err = errors.Join(err, addErr)
			}
			if err != nil {
				mu.Lock()
				errs.Errors = append(errs.Errors, fmt.Errorf("%s: %w", t.Label(), err))
				mu.Unlock()
			}
			if opts.Progress != nil {
				opts.Progress(t, "done", recs)
			}
			return nil // one VM's failure never stops the others
		})
	}
	_ = g.Wait()

	rep := store.Report()
	code := results.ExitCode(rep.Results)
	if ctx.Err() != nil {
		code = results.ExitInterrupted
	}
	took := time.Since(started)
	if err := store.Finish(took, code); err != nil {
		return nil, err
	}
	// The page belongs to the run directory like results.json: every caller
	// (run, repro) gets one. A run that passed but cannot write it is an
	// infrastructure failure, and says so in results.json.
	if err := report.WriteHTMLFile(filepath.Join(store.Dir, report.HTMLName), report.Run{Report: store.Report(), Dir: store.Dir}); err != nil {
		errs.Errors = append(errs.Errors, err)
		if code == results.ExitOK {
			code = results.ExitInfra
			if err := store.Finish(took, code); err != nil {
				return nil, err
			}
		}
	}
	return &Result{Dir: store.Dir, Report: store.Report(), ExitCode: code, Err: errs.ErrorOrNil()}, nil
}

// runTarget provisions one target and boots its VM. It returns a record per
// planned check whatever happens.
func runTarget(ctx context.Context, opts Options, prep *Provisioner, store *results.Store, t matrix.Target, accel qemu.Accel) ([]results.Record, error) {
	log := opts.Log.With("vm", t.Label())
	started := time.Now()
	base := results.Record{Kernel: t.Kernel.Name, Arch: string(t.Arch), Accel: string(accel)}
	plan, skipped := opts.Matrix.Plan(t.Arch)
	if opts.watch != nil {
		plan.More = true
	}
	// failAll: the VM never booted (its kernel, initramfs or input could
	// not be provisioned). Like a VM that died, it gets an error for each
	// planned check and one for itself (vmRecords).
	failAll := func(kind results.ErrorKind, err error) ([]results.Record, error) {
		recs := vm.Records(t, plan, base, vm.Outcome{FailKind: kind, Err: err}, time.Since(started))
		return append(recs, skipRecords(base, skipped)...), err
	}
	var phase func(string)
	if opts.Progress != nil {
		phase = func(p string) { opts.Progress(t, p, nil) }
	}
	pt, err := prep.Provision(ctx, t, phase)
	log.Debug("target prepared", "took", time.Since(started))
	if err != nil {
		var pe *ProvisionError
		if errors.As(err, &pe) {
			return failAll(pe.Kind, pe.Err)
		}
		return failAll(results.KindInitramfs, err)
	}
	base.KernelRelease, base.Source = pt.Kernel.Release, sourceOf(pt.Kernel)
	dir, err := store.VMDir(t.Dirname())
	if err != nil {
		return failAll(results.KindQEMU, err)
	}
	if opts.Progress != nil {
		opts.Progress(t, "boot", nil)
	}
	spec := vm.Spec{
		Target: t, Kernel: pt.Kernel, Initramfs: pt.Initramfs, Plan: plan, Accel: accel, Profile: opts.Profile,
		MemoryMiB: pt.MemoryMiB, CPUs: pt.CPUs, Dir: dir, BootTimeout: cmp.Or(opts.BootTimeout, BootTimeout(accel)),
		Timeout: opts.Matrix.Defaults.Timeout, Append: opts.Append, Log: log,
	}
	if opts.Output != nil {
		spec.Output = func(o protocol.Output) { opts.Output(t, o) }
	}
	if opts.watch != nil {
		spec.Rounds, spec.Round = opts.watch.rounds, opts.watch.round
	}
	if opts.Progress != nil {
		spec.OnCheck = func(check string) { opts.Progress(t, "check "+check, nil) }
		spec.OnProgress = func(line string) { opts.Progress(t, line, nil) }
	}
	spec.Files, spec.Dirs = pt.Files, pt.Dirs
	if opts.snapshots() && !pt.PerRun {
		lookup := time.Now()
		spec.Snapshot = vm.FindSnapshot(prep.Cache.Dir, spec, log)
		log.Debug("snapshot looked up", "took", time.Since(lookup))
	}
	var out vm.Outcome
	for attempt := 1; ; attempt++ {
		out = vm.Run(ctx, spec)
		if out.RestoreErr != nil && ctx.Err() == nil {
			// A state QEMU cannot load (damaged past the cache's checks, or
			// written by another build of QEMU) is deleted; the VM boots.
			log.Warn("snapshot could not be restored: deleted it, booting instead", "snapshot", spec.Snapshot.Key.ID()[:12], "err", out.RestoreErr)
			if err := spec.Snapshot.Cache.Remove(spec.Snapshot.Key.ID()); err != nil {
				log.Warn("remove snapshot", "err", err)
			}
			spec.Snapshot.Restore = nil
			out = vm.Run(ctx, spec)
		}
		if spec.Snapshot != nil && spec.Snapshot.Restore != nil {
			base.Boot, base.SnapshotAgeMS = string(protocol.BootSnapshot), time.Since(spec.Snapshot.Restore.Saved).Milliseconds()
			spec.Snapshot.Restore = nil // a retry boots
		} else {
			base.Boot, base.SnapshotAgeMS = string(protocol.BootCold), 0
		}
		base.Attempts = attempt
		if !retryable(out) || attempt > opts.Retries || ctx.Err() != nil {
			break
		}
		log.Warn("infrastructure failure, retrying", "attempt", attempt, "kind", out.FailKind, "err", out.Err)
		// Keep the failed attempt's console for the post-mortem.
		_ = os.Rename(filepath.Join(dir, "console.log"), filepath.Join(dir, fmt.Sprintf("console.attempt%d.log", attempt)))
	}
	base.Flaky = base.Attempts > 1 && out.FailKind == ""
	base.Console = t.Dirname() + "/console.log"
	base.Splats = out.Splats
	base.BootMS = out.Boot.Milliseconds()
	base.Channel = out.Channel
	if p := out.Prepared; p != nil {
		base.ClockStepMS = p.ClockStepMS
		if p.Boot == protocol.BootSnapshot {
			base.SnapshotAgeMS = p.SnapshotAgeMS
		}
	}
	if out.Saved {
		log.Debug("snapshot saved", "snapshot", spec.Snapshot.Key.ID()[:12], "stood_still", out.SaveTime)
	}
	if out.Ready != nil {
		// What the guest says it runs is kept only if it is a plausible release string.
		if rel := out.Ready.KernelRelease; validRelease(rel) {
			base.KernelRelease = rel
		}
	}
	recs := vm.Records(t, plan, base, out, time.Since(started))
	recs = vm.ProgramReasons(vm.ExpandTests(recs, plan, dir, t.Dirname()), dir)
	recs = append(recs, skipRecords(base, skipped)...)
	if out.FailKind != "" {
		log.Debug("vm failed", "kind", out.FailKind, "err", fmt.Sprintf("%+v", out.Err))
		return recs, out.Err
	}
	return recs, nil
}

// retryable reports whether a VM failed in a way that says nothing about the
// kernel under test: QEMU not starting, or no sign of life before the boot
// watchdog. Check failures, panics and hangs of running checks are never
// retried: they are results.
func retryable(out vm.Outcome) bool {
	switch out.FailKind {
	case results.KindBootTimeout:
		return true
	case results.KindQEMU:
		return out.Ready == nil
	}
	return false
}

// skipRecords are the records of checks that do not run on a target's arch.
func skipRecords(base results.Record, skipped []matrix.Check) []results.Record {
	var recs []results.Record
	for _, c := range skipped {
		r := base
		r.Check, r.Status = cmp.Or(c.SkipAs, c.Name), protocol.StatusSkip
		r.Message = cmp.Or(c.OtherArch, "not for "+base.Arch)
		recs = append(recs, r)
	}
	return recs
}

// validRelease accepts what uname -r can look like and nothing else.
func validRelease(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' || r == '_' || r == '~') {
			return false
		}
	}
	return true
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// plannedTargets lists the targets as results.json keeps them, so that a reader of
// an unfinished run can name the VMs it lacks.
func plannedTargets(ts []matrix.Target) []results.Target {
	out := make([]results.Target, 0, len(ts))
	for _, t := range ts {
		out = append(out, results.Target{Kernel: t.Kernel.Name, Arch: string(t.Arch)})
	}
	return out
}

// sourceOf is the identity of k as a record keeps it.
func sourceOf(k *kernels.Kernel) *results.Source {
	if k == nil {
		return nil
	}
	return &results.Source{Type: k.Origin.Type, Package: k.Origin.Package, Version: k.Origin.Version,
		Suite: k.Origin.Suite, SHA256: k.SHA256, URL: k.Origin.URL}
}
