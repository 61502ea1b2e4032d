package workloadcheck

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/workload"
)

func TestCompareCounts(t *testing.T) {
	sent := map[string]workload.Result{
		"http":  {Ops: 10, Counts: map[string]int64{"GET /a": 10, "status 200": 9, "status 503": 1}},
		"redis": {Ops: 2, Counts: map[string]int64{"GET": 2, "reply bulk": 2}},
		"sql":   {Ops: 1, Errors: 1, FirstError: "boom", Counts: map[string]int64{}},
	}
	tests := []struct {
		name     string
		observed map[string]map[string]int64
		want     []string
	}{
		{"equal", map[string]map[string]int64{
			"http":  {"GET /a": 10, "status 200": 9, "status 503": 1},
			"redis": {"GET": 2, "reply bulk": 2},
		}, []string{"sql: 1 client errors (first: boom)"}},
		{"wrong status", map[string]map[string]int64{
			"http":  {"GET /a": 10, "status 20": 9, "status 50": 1},
			"redis": {"GET": 2, "reply bulk": 2},
		}, []string{
			"http: expected {status 20=0, status 200=9, status 50=0, status 503=1} observed {status 20=9, status 200=0, status 50=1, status 503=0}",
			"sql: 1 client errors (first: boom)",
		}},
		{"extra key and missing protocol", map[string]map[string]int64{
			"http":  {"GET /a": 10, "status 200": 9, "status 503": 1, "unclassified": 3},
			"grpc":  {"unary calls": 1},
			"redis": {"GET": 2, "reply bulk": 2},
		}, []string{
			"http: expected {unclassified=0} observed {unclassified=3}",
			"grpc: expected {unary calls=0} observed {unary calls=1}",
			"sql: 1 client errors (first: boom)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := map[string]protocol.WorkloadProtocol{}
			got := compareCounts(sent, tt.observed, out)
			if !slices.Equal(got, tt.want) {
				t.Errorf("mismatches\n got %q\nwant %q", got, tt.want)
			}
			if out["http"].Match != !strings.Contains(strings.Join(got, "\n"), "http:") {
				t.Errorf("http match %v disagrees with %q", out["http"].Match, got)
			}
			table := countsTable(out)
			if !strings.Contains(table, "status 503") {
				t.Errorf("table lacks a key:\n%s", table)
			}
		})
	}
}

func TestOverheadFlags(t *testing.T) {
	tests := []struct {
		name string
		o    protocol.WorkloadOverhead
		want []string
	}{
		{"within", protocol.WorkloadOverhead{CPUPerOpPct: 1, P99DeltaMS: 0.5, MemoryMB: 60, StartupMS: 100}, nil},
		{"bpf share wins over per-op delta", protocol.WorkloadOverhead{CPUPerOpPct: 30, BPFCPUPct: 1.5}, nil},
		{"all outside", protocol.WorkloadOverhead{CPUPerOpPct: -3, BPFCPUPct: 2.5, P99DeltaMS: 1.2, MemoryMB: 200, StartupMS: 7000}, []string{
			"cpu: BPF run time +2.50% (target < 2%)", "p99: +1.20 ms (target < 1 ms)",
			"memory: 200.0 MB (target 50–150 MB)", "startup: 7000 ms (target < 5 s)",
		}},
		{"per-op without stats", protocol.WorkloadOverhead{CPUPerOpPct: 4}, []string{"cpu: CPU per operation +4.00% (target < 2%)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overheadFlags(&tt.o); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrowthPerHour(t *testing.T) {
	tests := []struct {
		first, last float64
		elapsed     time.Duration
		want        float64
	}{
		{100, 110, time.Hour, 10},
		{100, 101, 6 * time.Minute, 10},
		{100, 90, time.Hour, -10},
		{0, 5, time.Hour, 0},
		{10, 20, 0, 0},
	}
	for _, tt := range tests {
		if got := growthPerHour(tt.first, tt.last, tt.elapsed); got != tt.want {
			t.Errorf("growthPerHour(%v, %v, %v) = %v, want %v", tt.first, tt.last, tt.elapsed, got, tt.want)
		}
	}
}
