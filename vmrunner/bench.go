package vmrunner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Options     // matrix, cache, agents, accel
	Boots   int // boots per target and profile; default 5
	Out     io.Writer
}

// BootFigure is the boot benchmark of one target.
type BootFigure struct {
	Target Target
	Fast   time.Duration // median, ProfileFast
	Common time.Duration // median, ProfileCommon
}

// Ratio is Fast/Common.
func (b BootFigure) Ratio() float64 { return float64(b.Fast) / float64(b.Common) }

// Bench measures, in one run: per target, the median time from QEMU start to
// the agent's first message with the fast profile and the common one; the wall
// time of the whole matrix with a warm cache; and vmrunner's peak RSS. It
// prints figures and asserts nothing: targets are for people to judge.
func Bench(ctx context.Context, o BenchOptions) error {
	if o.Boots <= 0 {
		o.Boots = 5
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = discardLogger()
	}
	prep, err := NewPreparer(o.Options)
	if err != nil {
		return err
	}
	targets := o.Matrix.Targets()
	// Warm the cache so that the timed runs download and build nothing.
	prepared := map[string]*Prepared{}
	for _, t := range targets {
		pt, err := prep.Prepare(ctx, t, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Label(), err)
		}
		prepared[t.Label()] = pt
	}

	fmt.Fprintf(o.Out, "== whole matrix, warm cache (%d VMs, parallel %d)\n", len(targets), o.Parallel)
	out, err := os.MkdirTemp("", "vmrunner-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	opts := o.Options
	opts.OutDir = out
	opts.Progress = nil
	start := time.Now()
	res, err := Run(ctx, opts)
	if err != nil {
		return err
	}
	wall := time.Since(start)
	fmt.Fprintf(o.Out, "wall time: %s (exit code %d)\n", wall.Round(10*time.Millisecond), res.ExitCode)
	fmt.Fprintf(o.Out, "vmrunner peak RSS: %.1f MB\n\n", float64(peakRSS())/1e6)

	fmt.Fprintf(o.Out, "== boot: QEMU start → agent's first message, median of %d, fast vs common profile\n", o.Boots)
	fmt.Fprintf(o.Out, "%-16s %-6s %10s %10s %7s\n", "TARGET", "ACCEL", "FAST", "COMMON", "RATIO")
	for _, t := range targets {
		pt := prepared[t.Label()]
		accel, err := resolveAccel(o.Accel, t.Arch)
		if err != nil {
			return err
		}
		var fig BootFigure
		fig.Target = t
		for _, prof := range []Profile{ProfileFast, ProfileCommon} {
			var samples []time.Duration
			for i := 0; i < o.Boots; i++ {
				d, err := bootOnce(ctx, o.Options, pt, accel, prof)
				if err != nil {
					return fmt.Errorf("%s %s boot: %w", t.Label(), prof, err)
				}
				samples = append(samples, d)
			}
			if prof == ProfileFast {
				fig.Fast = median(samples)
			} else {
				fig.Common = median(samples)
			}
		}
		fmt.Fprintf(o.Out, "%-16s %-6s %10s %10s %6.2fx\n", t.Label(), accel,
			fig.Fast.Round(time.Millisecond), fig.Common.Round(time.Millisecond), fig.Ratio())
	}
	return nil
}

// bootOnce boots a prepared target with an empty plan and returns the time
// to ready.
func bootOnce(ctx context.Context, o Options, pt *Prepared, accel Accel, prof Profile) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "vmrunner-boot-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	out := runVM(ctx, vmSpec{
		Target: pt.Target, Kernel: pt.Kernel, Initramfs: pt.Initramfs, Plan: protocol.Plan{Checks: []protocol.CheckSpec{}},
		Accel: accel, Profile: prof, MemoryMiB: pt.MemoryMiB, CPUs: pt.CPUs,
		Dir: dir, BootTimeout: BootTimeout(accel), Timeout: 5 * time.Minute, Append: o.Append, Log: o.Log,
	})
	if out.FailKind != "" {
		return 0, out.Err
	}
	return out.Boot, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
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
