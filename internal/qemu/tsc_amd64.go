package qemu

import (
	"sync"
	"time"
)

// rdtsc reads the time-stamp counter. Go has no intrinsic for it, hence the
// three-instruction assembly file beside this one.
func rdtsc() uint64

var (
	tscOnce sync.Once
	tscKHz  int64
)

// hostTSCkHz measures the host's TSC frequency against the monotonic clock.
//
// Why: under TCG on an x86_64 host a guest's TSC is the host's TSC, and a
// guest kernel calibrates it against the emulated PIT. When the host is busy
// (several VMs on two cores) that calibration fails, Linux marks the TSC
// unstable and, with no HPET or PM timer on microvm, a 5.10 kernel hangs in
// early boot. Passing tsc_early_khz= skips the calibration.
//
// Each end of the measurement reads the clock between two reads of the TSC
// and keeps, of a few tries, the pair read closest together: a preemption
// between a clock read and a TSC read (likely on a busy host) would
// otherwise skew the frequency, and a guest booted with a low one runs its
// clock fast — for as long as a snapshot of it is restored.
func hostTSCkHz() int64 {
	tscOnce.Do(func() {
		t0, c0 := tscPair()
		time.Sleep(50 * time.Millisecond)
		t1, c1 := tscPair()
		if ns := t1.Sub(t0).Nanoseconds(); ns > 0 && c1 > c0 {
			tscKHz = int64(float64(c1-c0) / float64(ns) * 1e6)
		}
	})
	return tscKHz
}

// tscPair reads the monotonic clock and the TSC at (nearly) the same
// instant: the clock read bracketed by the two TSC reads that are closest
// together of several tries, the TSC taken as their midpoint.
func tscPair() (time.Time, uint64) {
	var (
		bestT    time.Time
		bestC    uint64
		bestSpan = ^uint64(0)
	)
	for range 16 {
		a := rdtsc()
		t := time.Now()
		b := rdtsc()
		if b >= a && b-a < bestSpan {
			bestT, bestC, bestSpan = t, a+(b-a)/2, b-a
		}
	}
	return bestT, bestC
}
