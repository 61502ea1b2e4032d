package vmrunner

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
func hostTSCkHz() int64 {
	tscOnce.Do(func() {
		t0, c0 := time.Now(), rdtsc()
		time.Sleep(50 * time.Millisecond)
		t1, c1 := time.Now(), rdtsc()
		if ns := t1.Sub(t0).Nanoseconds(); ns > 0 && c1 > c0 {
			tscKHz = int64(float64(c1-c0) / float64(ns) * 1e6)
		}
	})
	return tscKHz
}
