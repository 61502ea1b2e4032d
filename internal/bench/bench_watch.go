package bench

import (
	"context"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/internal/vm"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
)

// watchSample is one load of a repro --watch.
type watchSample struct {
	took  time.Duration // reload (or start) → verdict, on the host
	guest time.Duration // the verifier's own time in the guest, for the object
}

// benchWatch times repro --watch on every target: the VM is restored (or
// booted), loads o.WatchObject, and is then asked to load it again
// o.Reloads times, as Enter does; it prints the time from each reload to
// its verdict, and the guest's share of it.
func benchWatch(ctx context.Context, o Options, out string) error {
	if o.WatchObject == "" {
		return nil
	}
	if _, err := os.Stat(o.WatchObject); err != nil {
		fmt.Fprintf(o.Out, "== repro --watch: skipped: %v\n", err)
		return nil
	}
	fmt.Fprintf(o.Out, "== repro --watch %s, every program with its full log: Enter → verdict, %d reloads per VM (load average before: %s)\n",
		o.WatchObject, o.Reloads, loadAverage())
	fmt.Fprintf(o.Out, "%-16s %10s %10s %10s %10s %12s\n", "TARGET", "START", "MEDIAN", "MIN", "MAX", "GUEST MEDIAN")
	for _, t := range o.Matrix.Targets() {
		start, reloads, err := watchOnce(ctx, o, out, t)
		if err != nil {
			return fmt.Errorf("%s watch: %w", t.Label(), err)
		}
		if len(reloads) == 0 {
			return fmt.Errorf("%s watch: no reload came back", t.Label())
		}
		took, guest := make([]time.Duration, len(reloads)), make([]time.Duration, len(reloads))
		for i, s := range reloads {
			took[i], guest[i] = s.took, s.guest
		}
		r := 10 * time.Millisecond
		fmt.Fprintf(o.Out, "%-16s %10s %10s %10s %10s %12s\n", t.Label(), start.took.Round(r), median(took).Round(r),
			slices.Min(took).Round(r), slices.Max(took).Round(r), median(guest).Round(r))
	}
	fmt.Fprintf(o.Out, "load average after: %s\n", loadAverage())
	return nil
}

// watchOnce runs one repro --watch on t and returns its first load and
// its reloads.
func watchOnce(ctx context.Context, o Options, out string, t matrix.Target) (watchSample, []watchSample, error) {
	m, err := o.Matrix.Select([]string{t.Kernel.Name}, []kernels.Arch{t.Arch}, nil)
	if err != nil {
		return watchSample{}, nil, err
	}
	keys, press := io.Pipe()
	defer press.Close()
	verdicts := make(chan watchSample, 1)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	opts := o.Options
	opts.Matrix, opts.OutDir, opts.Parallel, opts.Progress = m, out, 1, nil
	wo := runner.WatchOptions{
		ReproOptions: runner.ReproOptions{Options: opts, Object: o.WatchObject},
		Keys:         keys, Logs: io.Discard, Verdicts: io.Discard,
		OnVerdict: func(_ string, took time.Duration, r vm.RoundOutcome) {
			s := watchSample{took: took}
			for _, res := range r.Results {
				if strings.Count(res.Check, "/") == 1 { // verifier/<object>
					s.guest = max(s.guest, time.Duration(res.DurationMS)*time.Millisecond)
				}
			}
			select {
			case verdicts <- s:
			default: // not asked for: the bench is ending the watch
			}
		},
	}
	type ended struct {
		res *runner.ReproResult
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, err := runner.ReproWatch(ctx, wo)
		done <- ended{res, err}
	}()
	var (
		first   watchSample
		reloads []watchSample
	)
	wait := func() (watchSample, error) {
		select {
		case s := <-verdicts:
			return s, nil
		case e := <-done:
			if e.err == nil && e.res != nil {
				e.err = e.res.Err
			}
			return watchSample{}, fmt.Errorf("the watch ended early: %v", e.err)
		}
	}
	first, err = wait()
	for i := 0; err == nil && i < o.Reloads; i++ {
		// As a person would: the VM idle, then Enter.
		time.Sleep(200 * time.Millisecond)
		if _, err = press.Write([]byte("\n")); err != nil {
			break
		}
		var s watchSample
		if s, err = wait(); err == nil {
			reloads = append(reloads, s)
		}
	}
	stop()
	_ = press.Close()
	select {
	case e := <-done:
		if err == nil && e.err != nil {
			err = e.err
		}
	case <-time.After(runner.WatchStop + 5*time.Second):
		if err == nil {
			err = fmt.Errorf("the watched VM did not end")
		}
	}
	return first, reloads, err
}
