package bench

import (
	"bufio"
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/internal/vm"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// Options configure Bench.
type Options struct {
	runner.Options     // matrix, cache, agents, accel
	Boots          int // boots per target and profile; default 5
	// MatrixRuns is how many times the whole matrix runs booted and
	// restored, alternately; default 3.
	MatrixRuns int
	// WatchObject is the object repro --watch loads on every target, ""
	// for none; Reloads how many times it is loaded again (default 5).
	WatchObject string
	Reloads     int
	// Only, when set, names the parts to run: BenchMatrix, BenchBoot,
	// BenchWatch.
	Only []string
	Out  io.Writer
}

// The parts of Run.
const (
	PartMatrix = "matrix"
	PartBoot   = "boot"
	PartWatch  = "watch"
)

// Parts are the parts of Run, in the order it runs them.
var Parts = []string{PartMatrix, PartBoot, PartWatch}

func (o Options) runs(part string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, part)
}

// BootFigure is the boot benchmark of one target.
type BootFigure struct {
	Target   matrix.Target
	Fast     time.Duration // median, ProfileFast
	Common   time.Duration // median, ProfileCommon
	Restored time.Duration // median, ProfileFast restored from its snapshot
}

// Ratio is Fast/Common.
func (b BootFigure) Ratio() float64 { return float64(b.Fast) / float64(b.Common) }

// Run measures, in one run with a warm cache: the wall time of the whole
// matrix with every VM booted and with every VM restored from its
// snapshot, alternately, with where the time goes and vmrunner's peak RSS;
// per target, the median time from QEMU start to ready with the fast
// profile and the common one, and restored from a snapshot (with what
// saving it cost); and per target, repro --watch's time from a reload to
// its verdict. It prints figures and asserts nothing: targets are for
// people to judge.
func Run(ctx context.Context, o Options) error {
	if o.Boots <= 0 {
		o.Boots = 5
	}
	if o.MatrixRuns <= 0 {
		o.MatrixRuns = 3
	}
	if o.Reloads <= 0 {
		o.Reloads = 5
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	prep, err := runner.NewProvisioner(o.Options)
	if err != nil {
		return err
	}
	targets := o.Matrix.Targets()
	// Warm the cache so that the timed runs download and build nothing.
	provisioned := map[string]*runner.Provisioned{}
	for _, t := range targets {
		pt, err := prep.Provision(ctx, t, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label(), err)
		}
		provisioned[t.Label()] = pt
	}

	out, err := os.MkdirTemp("", "vmrunner-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	if o.runs(PartMatrix) {
		if err := benchMatrix(ctx, o, out); err != nil {
			return err
		}
	}
	if o.runs(PartBoot) {
		if err := benchBoots(ctx, o, provisioned); err != nil {
			return err
		}
	}
	if o.runs(PartWatch) {
		return benchWatch(ctx, o, out)
	}
	return nil
}

// benchBoots times, per target, QEMU's start to ready, booted the fast and
// the common way and restored.
func benchBoots(ctx context.Context, o Options, provisioned map[string]*runner.Provisioned) error {
	targets := o.Matrix.Targets()

	fmt.Fprintf(o.Out, "== to ready: QEMU start → the agent's first message (booted) or → its snapshot loaded and running (restored), median of %d\n", o.Boots)
	fmt.Fprintf(o.Out, "%-16s %-6s %10s %10s %7s %10s %7s %8s %8s\n", "TARGET", "ACCEL", "FAST", "COMMON", "RATIO", "RESTORED", "R/FAST", "SAVE", "STATE")
	for _, t := range targets {
		pt := provisioned[t.Label()]
		accel, err := qemu.ResolveAccel(o.Accel, t.Arch)
		if err != nil {
			return err
		}
		var fig BootFigure
		fig.Target = t
		for _, prof := range []qemu.Profile{qemu.ProfileFast, qemu.ProfileCommon} {
			var samples []time.Duration
			for i := 0; i < o.Boots; i++ {
				b, err := bootOnce(ctx, o.Options, pt, accel, prof, false)
				if err != nil {
					return fmt.Errorf("%s %s boot: %w", t.Label(), prof, err)
				}
				samples = append(samples, b.ready)
			}
			if prof == qemu.ProfileFast {
				fig.Fast = median(samples)
			} else {
				fig.Common = median(samples)
			}
		}
		// One boot saves the snapshot (unless the cache has it), then the
		// restores are timed.
		first, err := bootOnce(ctx, o.Options, pt, accel, qemu.ProfileFast, true)
		if err != nil {
			return fmt.Errorf("%s save: %w", t.Label(), err)
		}
		var samples []time.Duration
		state := int64(0)
		for i := 0; i < o.Boots; i++ {
			b, err := bootOnce(ctx, o.Options, pt, accel, qemu.ProfileFast, true)
			if err != nil {
				return fmt.Errorf("%s restore: %w", t.Label(), err)
			}
			if !b.restored {
				return fmt.Errorf("%s: not restored from its snapshot", t.Label())
			}
			samples = append(samples, b.ready)
			state = b.state
		}
		fig.Restored = median(samples)
		save := "cached"
		if first.saved {
			save = first.save.Round(time.Millisecond).String()
		}
		fmt.Fprintf(o.Out, "%-16s %-6s %10s %10s %6.2fx %10s %6.2fx %8s %6.0fMB\n", t.Label(), accel,
			fig.Fast.Round(time.Millisecond), fig.Common.Round(time.Millisecond), fig.Ratio(),
			fig.Restored.Round(time.Millisecond), float64(fig.Restored)/float64(fig.Fast), save, float64(state)/1e6)
	}

	fmt.Fprintln(o.Out)
	return nil
}

// benchBoot is what one bootOnce measured.
type benchBoot struct {
	ready    time.Duration // QEMU start to ready (booted) or to running again (restored)
	restored bool
	saved    bool
	save     time.Duration // how long the VM stood still while it was saved
	state    int64         // the snapshot's size
}

// bootOnce boots a provisioned target with an empty plan and returns the time
// to ready. With snapshot, it restores the target's snapshot, or boots
// and saves one.
func bootOnce(ctx context.Context, o runner.Options, pt *runner.Provisioned, accel qemu.Accel, prof qemu.Profile, snapshot bool) (benchBoot, error) {
	dir, err := os.MkdirTemp("", "vmrunner-boot-")
	if err != nil {
		return benchBoot{}, err
	}
	defer os.RemoveAll(dir)
	spec := vm.Spec{
		Target: pt.Target, Kernel: pt.Kernel, Initramfs: pt.Initramfs, Plan: protocol.Plan{Checks: []protocol.CheckSpec{}},
		Accel: accel, Profile: prof, MemoryMiB: pt.MemoryMiB, CPUs: pt.CPUs,
		Dir: dir, BootTimeout: runner.BootTimeout(accel), Timeout: 5 * time.Minute, Append: o.Append, Log: o.Log,
	}
	if snapshot {
		cacheDir := o.CacheDir
		if cacheDir == "" {
			if cacheDir, err = kernels.DefaultCacheDir(); err != nil {
				return benchBoot{}, err
			}
		}
		spec.Snapshot = vm.FindSnapshot(cacheDir, spec, o.Log)
	}
	b := benchBoot{restored: spec.Snapshot != nil && spec.Snapshot.Restore != nil}
	if b.restored {
		b.state = spec.Snapshot.Restore.Size
	}
	out := vm.Run(ctx, spec)
	if out.FailKind != "" {
		return b, out.Err
	}
	b.ready, b.saved, b.save = out.Boot, out.Saved, out.SaveTime
	return b, nil
}

// median is the middle of d, or the mean of its two middles.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// peakRSS returns this process's peak resident set size in bytes (VmHWM).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
