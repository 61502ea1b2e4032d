package bench

import (
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/runner"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// matrixRun is one timed run of the whole matrix.
type matrixRun struct {
	phases   runPhases
	code     int
	restored int // VMs restored from a snapshot
	vms      int
}

// runMatrix runs the whole matrix of o once, into out, and times its
// phases.
func runMatrix(ctx context.Context, o Options, out string, noSnapshot bool) (matrixRun, error) {
	opts := o.Options
	clock := newPhaseClock(time.Now)
	opts.OutDir, opts.Progress, opts.NoSnapshot = out, clock.progress, noSnapshot
	start := time.Now()
	res, err := runner.Run(ctx, opts)
	if err != nil {
		return matrixRun{}, err
	}
	// A check that fails still times the matrix; VMs that did not run do
	// not.
	if res.ExitCode != results.ExitOK && res.ExitCode != results.ExitFail {
		return matrixRun{}, fmt.Errorf("the whole matrix did not run (exit code %d, results in %s): %w", res.ExitCode, res.Dir, res.Err)
	}
	mr := matrixRun{phases: clock.result(time.Since(start)), code: res.ExitCode, vms: len(o.Matrix.Targets())}
	seen := map[string]bool{}
	for _, r := range res.Report.Results {
		label := r.Kernel + "/" + r.Arch
		if !seen[label] && r.Boot == string(protocol.BootSnapshot) {
			seen[label] = true
			mr.restored++
		}
	}
	return mr, nil
}

// benchMatrix times the whole matrix with every VM booted and with every
// VM restored, alternately, so that both see the same machine, and prints
// the runs, their medians and where the time goes.
func benchMatrix(ctx context.Context, o Options, out string) error {
	targets := o.Matrix.Targets()
	fmt.Fprintf(o.Out, "== whole matrix, warm cache: every VM booted (--no-snapshot) against every VM restored, alternately, %d rounds (%d VMs, %d at a time)\n",
		o.MatrixRuns, len(targets), o.Parallel)
	fmt.Fprintf(o.Out, "load average before: %s\n", loadAverage())
	// The restored runs need every VM's snapshot: a first run saves those
	// missing.
	first, err := runMatrix(ctx, o, out, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "first run, saving missing snapshots: %s (exit code %d, %d of %d VMs restored)\n",
		first.phases.wall.Round(10*time.Millisecond), first.code, first.restored, first.vms)
	var booted, restored []runPhases
	for i := 0; i < o.MatrixRuns; i++ {
		b, err := runMatrix(ctx, o, out, true)
		if err != nil {
			return err
		}
		r, err := runMatrix(ctx, o, out, false)
		if err != nil {
			return err
		}
		booted, restored = append(booted, b.phases), append(restored, r.phases)
		note := ""
		if r.restored < r.vms {
			note = fmt.Sprintf(" — only %d of %d VMs restored (a snapshot was evicted or damaged)", r.restored, r.vms)
		}
		fmt.Fprintf(o.Out, "round %d: booted %s (exit code %d), restored %s (exit code %d): %.2fx; load average %s%s\n", i+1,
			b.phases.wall.Round(10*time.Millisecond), b.code, r.phases.wall.Round(10*time.Millisecond), r.code,
			float64(r.phases.wall)/float64(b.phases.wall), loadAverage(), note)
	}
	if len(booted) == 0 {
		return nil
	}
	walls := func(rs []runPhases) []time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.wall)
		}
		return ds
	}
	mb, mr := median(walls(booted)), median(walls(restored))
	fmt.Fprintf(o.Out, "median: booted %s, restored %s: restored/booted %.2fx (target ≤ 0.6x)\n",
		mb.Round(10*time.Millisecond), mr.Round(10*time.Millisecond), float64(mr)/float64(mb))
	fmt.Fprintf(o.Out, "where the time goes, mean of the rounds:\n")
	printPhases(o.Out, booted, restored, o.Parallel)
	fmt.Fprintf(o.Out, "vmrunner peak RSS: %.1f MB\n\n", float64(peakRSS())/1e6)
	return nil
}
