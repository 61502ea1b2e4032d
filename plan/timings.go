package plan

import (
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// Costs reads the durations of a previous run: a target's cost is its boot
// time plus the durations of all its records. That leaves out the kernel
// download and the initramfs build, which a warm cache makes small, and the
// power-off, which is short.
func Costs(rep results.Report) map[Target]time.Duration {
	boot := map[Target]int64{}
	sum := map[Target]int64{}
	for _, r := range rep.Results {
		t := Target{r.Kernel, r.Arch}
		boot[t] = max(boot[t], r.BootMS)
		sum[t] += max(r.DurationMS, 0)
	}
	out := make(map[Target]time.Duration, len(sum))
	for t, ms := range sum {
		out[t] = time.Duration(ms+boot[t]) * time.Millisecond
	}
	return out
}
