package bench

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// phaseClock times the phases of a run's VMs as the host sees them, from
// Options.Progress: provisioning the target (kernel, initramfs), from QEMU's
// start to the first check (boot or restore, plan, files), each check
// (until the next one starts: its results and artifacts included), and
// after the last check's guest time until the VM's records are stored
// (power-off, console, records).
type phaseClock struct {
	now     func() time.Time
	mu      sync.Mutex
	started time.Time
	vms     map[string]*vmPhases
	order   []string // phase names, in the order first seen
}

type vmPhases struct {
	phase string // the phase running
	since time.Time
	took  map[string]time.Duration
	done  time.Time
}

// Phase names that are not checks.
const (
	phaseProvision = "prepare (kernel, initramfs)"
	phaseStart     = "boot or restore → first check"
	phaseEnd       = "power-off, records"
)

func newPhaseClock(now func() time.Time) *phaseClock {
	return &phaseClock{now: now, started: now(), vms: map[string]*vmPhases{}}
}

// progress is an Options.Progress.
func (c *phaseClock) progress(t matrix.Target, phase string, recs []results.Record) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	vm := c.vms[t.Label()]
	if vm == nil {
		vm = &vmPhases{took: map[string]time.Duration{}}
		c.vms[t.Label()] = vm
	}
	var name string
	switch {
	case phase == "kernel" || phase == "initramfs":
		name = phaseProvision
	case phase == "boot":
		name = phaseStart
	case strings.HasPrefix(phase, "check "):
		name = strings.TrimPrefix(phase, "check ")
	case phase == "done":
		name = "done"
	default:
		return // a check's progress line
	}
	if name == vm.phase {
		return
	}
	if vm.phase != "" {
		took := now.Sub(vm.since)
		if name == "done" {
			// The last check ends with its guest time; the rest is the
			// VM's end.
			if g := guestTime(recs, vm.phase); g > 0 && g < took {
				c.add(vm, phaseEnd, took-g)
				took = g
			}
		}
		c.add(vm, vm.phase, took)
	}
	vm.phase, vm.since = name, now
	if name == "done" {
		vm.done = now
	}
}

func (c *phaseClock) add(vm *vmPhases, name string, d time.Duration) {
	if !slices.Contains(c.order, name) {
		c.order = append(c.order, name)
	}
	vm.took[name] += d
}

// guestTime is how long the guest says check ran: its own record, or the
// longest of its sub-results' (verifier/<object>).
func guestTime(recs []results.Record, check string) time.Duration {
	var ms int64
	for _, r := range recs {
		if r.Check == check || strings.HasPrefix(r.Check, check+"/") && strings.Count(r.Check, "/") == 1 {
			ms = max(ms, r.DurationMS)
		}
	}
	return time.Duration(ms) * time.Millisecond
}

// runPhases is one run's phases summed over its VMs, and its wall time.
type runPhases struct {
	wall    time.Duration
	sum     map[string]time.Duration
	order   []string
	vms     int
	vmTime  time.Duration // sum of the VMs' times from provisioning to records
	lastEnd time.Duration // from the run's start to the last VM's records
}

func (c *phaseClock) result(wall time.Duration) runPhases {
	c.mu.Lock()
	defer c.mu.Unlock()
	rp := runPhases{wall: wall, sum: map[string]time.Duration{}, order: slices.Clone(c.order), vms: len(c.vms)}
	for _, vm := range c.vms {
		for name, d := range vm.took {
			rp.sum[name] += d
			rp.vmTime += d
		}
		rp.lastEnd = max(rp.lastEnd, vm.done.Sub(c.started))
	}
	return rp
}

// printPhases prints the phases of booted and restored runs side by side,
// each the mean over its runs.
func printPhases(w io.Writer, booted, restored []runPhases, parallel int) {
	mean := func(rs []runPhases, f func(runPhases) time.Duration) time.Duration {
		if len(rs) == 0 {
			return 0
		}
		var s time.Duration
		for _, r := range rs {
			s += f(r)
		}
		return s / time.Duration(len(rs))
	}
	var order []string
	for _, r := range append(slices.Clone(booted), restored...) {
		for _, name := range r.order {
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
		}
	}
	// The VM's end last, after the checks.
	if i := slices.Index(order, phaseEnd); i >= 0 {
		order = append(slices.Delete(order, i, i+1), phaseEnd)
	}
	row := func(name string, f func(runPhases) time.Duration) {
		b, r := mean(booted, f), mean(restored, f)
		ratio := ""
		if b > 0 {
			ratio = fmt.Sprintf("%6.2fx", float64(r)/float64(b))
		}
		fmt.Fprintf(w, "  %-40s %9s %9s %s\n", name, b.Round(10*time.Millisecond), r.Round(10*time.Millisecond), ratio)
	}
	fmt.Fprintf(w, "  %-40s %9s %9s %s\n", "phase (summed over the VMs, host's view)", "BOOTED", "RESTORED", "R/B")
	for _, name := range order {
		label := name
		if name != phaseProvision && name != phaseStart && name != phaseEnd {
			label = "check " + name
		}
		row(label, func(r runPhases) time.Duration { return r.sum[name] })
	}
	row("all VMs", func(r runPhases) time.Duration { return r.vmTime })
	row(fmt.Sprintf("wall × %d VMs at a time", parallel), func(r runPhases) time.Duration { return r.wall * time.Duration(parallel) })
	row("wall: until the last VM's records", func(r runPhases) time.Duration { return r.lastEnd })
	row("wall: after (results.json, report.html)", func(r runPhases) time.Duration { return r.wall - r.lastEnd })
	row("wall", func(r runPhases) time.Duration { return r.wall })
}

// loadAverage is the host's load average (1, 5 and 15 minutes), as
// /proc/loadavg says it, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
