package main

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/vmrunner/vmrunner/results"
)

// progress shows what each VM is doing. On a terminal it is one live line per
// VM (github.com/vbauerster/mpb redraws them; logs print above); otherwise
// one plain line per phase change, which stays readable in CI logs.
type progress struct {
	start time.Time
	out   io.Writer // where logs go: above the bars, or plain stderr

	mu     sync.Mutex
	p      *mpb.Progress
	bars   map[string]*mpb.Bar
	phases map[string]*vmPhase
}

// vmPhase is what one VM is doing and since when.
type vmPhase struct {
	text          string
	started, done time.Time
}

func newProgress(w io.Writer, targets []matrix.Target) *progress {
	pr := &progress{start: time.Now(), out: w}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || os.Getenv("CI") != "" {
		return pr
	}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(200*time.Millisecond))
	pr.out = pr.p
	pr.bars = map[string]*mpb.Bar{}
	pr.phases = map[string]*vmPhase{}
	for _, t := range targets {
		label := t.Label()
		pr.phases[label] = &vmPhase{text: "waiting"}
		pr.bars[label] = pr.p.New(1, mpb.NopStyle(),
			mpb.PrependDecorators(
				decor.Name(label, decor.WCSyncSpaceR),
				decor.Any(func(decor.Statistics) string { return pr.line(label) }),
			))
	}
	return pr
}

// line renders a VM's elapsed time and phase.
func (pr *progress) line(label string) string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	ph := pr.phases[label]
	elapsed := "     -"
	switch {
	case !ph.done.IsZero():
		elapsed = fmt.Sprintf("%6s", ph.done.Sub(ph.started).Round(100*time.Millisecond))
	case !ph.started.IsZero():
		elapsed = fmt.Sprintf("%6s", time.Since(ph.started).Round(time.Second))
	}
	return "  " + elapsed + "  " + ph.text
}

// update is runner.Options.Progress.
func (pr *progress) update(t matrix.Target, phase string, recs []results.Record) {
	text := phase
	if phase == "done" {
		text = "done: " + tally(recs)
	}
	if pr.p == nil {
		fmt.Fprintf(pr.out, "%-16s %s (%s)\n", t.Label(), text, time.Since(pr.start).Round(100*time.Millisecond))
		return
	}
	pr.mu.Lock()
	ph := pr.phases[t.Label()]
	if ph.started.IsZero() {
		ph.started = time.Now()
	}
	ph.text = text
	if phase == "done" {
		ph.done = time.Now()
	}
	bar := pr.bars[t.Label()]
	pr.mu.Unlock()
	if phase == "done" && bar != nil {
		bar.SetCurrent(1)
	}
}

// wait draws the final state and stops the redraws.
func (pr *progress) wait() {
	if pr.p == nil {
		return
	}
	for _, b := range pr.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	pr.p.Wait()
}
