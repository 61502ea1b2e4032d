package bench

import (
	"bytes"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
)

func TestPhaseClock(t *testing.T) {
	at := time.Unix(1000, 0)
	clock := newPhaseClock(func() time.Time { return at })
	tg := matrix.Target{Kernel: matrix.KernelEntry{Name: "6.1"}, Arch: kernels.X86_64}
	step := func(d time.Duration, phase string, recs ...results.Record) {
		at = at.Add(d)
		clock.progress(tg, phase, recs)
	}
	step(0, "kernel", results.Record{})
	step(100*time.Millisecond, "initramfs")
	step(50*time.Millisecond, "boot")
	step(2*time.Second, "check btf")
	step(1500*time.Millisecond, "check verifier")
	step(10*time.Second, "verifier: loading probes/big, 10s so far") // a progress line: no phase
	step(0, "verifier: loading probes/big, 20s so far")
	// The last check's guest time is 20 s of the 20.4 s before done: the
	// rest is the VM's end.
	step(10400*time.Millisecond, "done",
		results.Record{Check: "btf", DurationMS: 1400},
		results.Record{Check: "verifier/probes/big", DurationMS: 19000},
		results.Record{Check: "verifier/probes", DurationMS: 20000})
	rp := clock.result(25 * time.Second)
	want := map[string]time.Duration{
		phaseProvision: 150 * time.Millisecond,
		phaseStart:     2 * time.Second,
		"btf":          1500 * time.Millisecond,
		"verifier":     20 * time.Second,
		phaseEnd:       400 * time.Millisecond,
	}
	for name, d := range want {
		if rp.sum[name] != d {
			t.Errorf("%s: %s, want %s", name, rp.sum[name], d)
		}
	}
	if rp.vms != 1 || rp.vmTime != 24050*time.Millisecond || rp.lastEnd != 24050*time.Millisecond {
		t.Errorf("vms %d, VM time %s, last end %s; want 1, 24.05s, 24.05s", rp.vms, rp.vmTime, rp.lastEnd)
	}
	var out bytes.Buffer
	printPhases(&out, []runPhases{rp}, []runPhases{rp}, 2)
	for _, line := range []string{"prepare (kernel, initramfs)", "check btf", "check verifier", "power-off, records", "wall × 2 VMs at a time"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("no %q in the table:\n%s", line, out.String())
		}
	}
	if i, j := strings.Index(out.String(), "check verifier"), strings.Index(out.String(), "power-off"); i > j {
		t.Errorf("the VM's end is not after the checks:\n%s", out.String())
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3, 1, 2}, 2},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 20}, 15},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
