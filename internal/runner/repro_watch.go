package runner

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/vm"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/protocol"
)

// repro --watch keeps the VM of a repro up and loads the object again each
// time it changes on the host, or each time Enter is pressed: the agent
// runs plan after plan (protocol.Plan.More), each with the object's new
// content sent over the channel, so that a reload costs the verifier's
// time and the object's transfer, not a boot.

// WatchOptions configure ReproWatch.
type WatchOptions struct {
	ReproOptions
	// Keys, when set, is read line by line: each line (Enter) reloads the
	// object, changed or not.
	Keys io.Reader
	// Logs gets each program's verifier log, Verdicts the one-line
	// verdicts and what the watch is doing.
	Logs, Verdicts io.Writer
	// Poll is how often the object's size and time are looked at (default
	// 200 ms); a change is loaded once it holds for one more look, so that
	// a half-written file is not.
	Poll time.Duration
	// OnVerdict, when set, is told each load's outcome and the time from
	// the reload (or the start) to its OnVerdict (vmrunner bench).
	OnVerdict func(what string, took time.Duration, r vm.RoundOutcome)
}

// watchHooks connect a run's one VM to ReproWatch.
type watchHooks struct {
	rounds <-chan vm.Round
	round  func(vm.RoundOutcome)
}

// WatchStop bounds how long the VM has to finish its plan and power off
// once the watch is stopped (Ctrl-C); past it the VM is stopped.
const WatchStop = 15 * time.Second

// watchTimeout replaces the matrix's VM timeout: a watched VM lives as
// long as the user watches. Each check keeps its own timeout.
const watchTimeout = 7 * 24 * time.Hour

// ReproWatch boots (or restores) the VM of a repro, loads the object, and
// then loads it again at every change until ctx ends, printing each time
// the verifier logs and verdicts. Ending ctx ends the watch cleanly: the
// VM finishes what it runs, powers off, and the run is saved with the last
// load's records. The result's exit code is that of the last load (see
// Repro); the end of ctx is not an interruption.
func ReproWatch(ctx context.Context, o WatchOptions) (*ReproResult, error) {
	m, err := reproMatrix(o.ReproOptions)
	if err != nil {
		return nil, err
	}
	m.Defaults.Timeout = watchTimeout
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	w := &watcher{o: o, guestPath: m.Checks[0].Files[0].Guest}
	w.plan, _ = m.Plan(o.Matrix.Targets()[0].Arch)
	w.plan.More = true
	// What the VM loads first is what Provision reads now: a touch alone
	// does not load it again.
	if _, sum, err := w.read(); err == nil {
		w.last = sum
	}
	rounds := make(chan vm.Round)
	opts := o.ReproOptions
	opts.Matrix, opts.Retries = m, 0
	opts.watch = &watchHooks{rounds: rounds, round: w.report}

	// The run outlives ctx by as long as the VM needs to end well.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(rounds)
		w.watch(ctx, rounds, finished)
	}()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(WatchStop):
				cancelRun()
			case <-finished:
			}
		case <-finished:
		}
	}()
	w.mark("start")
	res, err := repro(runCtx, opts)
	close(finished)
	wg.Wait()
	return res, err
}

// watcher sends the object's versions to the VM and prints what the
// verifier said of each.
type watcher struct {
	o         WatchOptions
	guestPath string
	plan      protocol.Plan

	mu     sync.Mutex
	sentAt time.Time
	what   string // what the next verdict follows: "boot", "reload"
	last   string // SHA-256 of the version loaded last
}

func (w *watcher) mark(what string) {
	w.mu.Lock()
	w.sentAt, w.what = time.Now(), what
	w.mu.Unlock()
}

// report prints one load's logs and verdicts.
func (w *watcher) report(r vm.RoundOutcome) {
	w.mu.Lock()
	took, what := time.Since(w.sentAt), w.what
	w.mu.Unlock()
	for _, res := range r.Results {
		for _, a := range r.Artifacts[res.Check] {
			if !strings.HasSuffix(a, ".log") {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(r.Dir, a)); err == nil {
				_, _ = w.o.Logs.Write(b)
			}
		}
	}
	t := w.o.Matrix.Targets()[0]
	for _, res := range r.Results {
		fmt.Fprintf(w.o.Verdicts, "%s on %s: %s: %s\n", res.Check, t.Label(), res.Status, res.Message)
	}
	fmt.Fprintf(w.o.Verdicts, "%s → verdict: %s; watching %s (save it, or press Enter, to load it again; Ctrl-C to stop)\n",
		what, took.Round(10*time.Millisecond), w.o.Object)
	if w.o.OnVerdict != nil {
		w.o.OnVerdict(what, took, r)
	}
}

// watch sends a round whenever the object changes (for two looks in a row)
// or a line comes from Keys, until ctx ends or the run finished.
func (w *watcher) watch(ctx context.Context, rounds chan<- vm.Round, finished <-chan struct{}) {
	keys := make(chan struct{})
	if w.o.Keys != nil {
		// A read of a terminal cannot be called off: this goroutine ends
		// with the next line, or with the process.
		go func() {
			sc := bufio.NewScanner(w.o.Keys)
			for sc.Scan() {
				select {
				case keys <- struct{}{}:
				case <-finished:
					return
				}
			}
		}()
	}
	stat := func() string {
		fi, err := os.Stat(w.o.Object)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
	}
	seen, pending := stat(), ""
	tick := time.NewTicker(w.o.Poll)
	defer tick.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-finished:
			return
		case <-keys:
			force = true
		case <-tick.C:
			now := stat()
			switch {
			case now == seen:
				pending = ""
				continue
			case now != pending:
				pending = now // look once more before loading
				continue
			}
			seen, pending = now, ""
		}
		round, sum, err := w.read()
		if err != nil {
			fmt.Fprintf(w.o.Verdicts, "watch: %v\n", err)
			continue
		}
		if !force && sum == w.lastSum() {
			continue // touched, not changed
		}
		w.mark("reload")
		select {
		case rounds <- round:
			w.mu.Lock()
			w.last = sum
			w.mu.Unlock()
		case <-ctx.Done():
			return
		case <-finished:
			return
		}
	}
}

func (w *watcher) lastSum() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// read reads the object once, within the bounds of a plan's file, and
// makes the round that loads that content.
func (w *watcher) read() (vm.Round, string, error) {
	f, size, err := inputfile.Open(w.o.Object, protocol.MaxFileSize)
	if err != nil {
		return vm.Round{}, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, size+1))
	if err != nil {
		return vm.Round{}, "", fmt.Errorf("read %s: %w", w.o.Object, err)
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	pf := vm.PlanFile{Host: w.o.Object, Data: data,
		Spec: protocol.FileSpec{Path: w.guestPath, Size: int64(len(data)), SHA256: sum, Mode: protocol.FileMode}}
	return vm.Round{Plan: w.plan, Files: []vm.PlanFile{pf}}, sum, nil
}
