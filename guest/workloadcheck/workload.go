package workloadcheck

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/workload"
)

// The RFD's overhead targets.
const (
	targetCPUPct     = 2.0
	targetP99DeltaMS = 1.0
	targetMemoryMB   = 150.0
	targetStartupMS  = 5000.0
	targetGrowthPctH = 10.0
)

// compareCounts fills the sent and observed counts of each protocol and
// returns one line per protocol where they differ, "proto: expected {…}
// observed {…}", listing only the keys that differ. A protocol with client
// errors is a mismatch too: what it put on the wire is unknown.
func compareCounts(sent map[string]workload.Result, observed map[string]map[string]int64, out map[string]protocol.WorkloadProtocol) []string {
	var lines []string
	for _, name := range workload.Protocols {
		r, ran := sent[name]
		obs := observed[name]
		if !ran && len(obs) == 0 {
			continue
		}
		p := protocol.WorkloadProtocol{
			TargetRate: r.TargetRate, AchievedRate: round2(r.AchievedRate), Ops: r.Ops,
			Errors: r.Errors, FirstError: r.FirstError, P50MS: ms(r.P50), P99MS: ms(r.P99),
			Sent: nonNilCounts(r.Counts), Observed: nonNilCounts(obs),
		}
		p.Match = r.Errors == 0 && maps.Equal(p.Sent, p.Observed)
		out[name] = p
		if p.Match {
			continue
		}
		if r.Errors > 0 {
			lines = append(lines, fmt.Sprintf("%s: %d client errors (first: %s)", name, r.Errors, r.FirstError))
			continue
		}
		var exp, got []string
		for _, k := range slices.Sorted(maps.Keys(union(p.Sent, p.Observed))) {
			if p.Sent[k] != p.Observed[k] {
				exp = append(exp, fmt.Sprintf("%s=%d", k, p.Sent[k]))
				got = append(got, fmt.Sprintf("%s=%d", k, p.Observed[k]))
			}
		}
		lines = append(lines, fmt.Sprintf("%s: expected {%s} observed {%s}", name, strings.Join(exp, ", "), strings.Join(got, ", ")))
	}
	return lines
}

// countsTable renders sent and observed counts side by side, the
// workload/counts.txt artifact.
func countsTable(ps map[string]protocol.WorkloadProtocol) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-22s %10s %10s\n", "PROTOCOL", "KEY", "SENT", "OBSERVED")
	for _, name := range workload.Protocols {
		p, ok := ps[name]
		if !ok {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(union(p.Sent, p.Observed))) {
			mark := ""
			if p.Sent[k] != p.Observed[k] {
				mark = "  <- mismatch"
			}
			fmt.Fprintf(&b, "%-8s %-22s %10d %10d%s\n", name, k, p.Sent[k], p.Observed[k], mark)
		}
	}
	return b.String()
}

// overheadFlags lists the figures outside the RFD's targets.
func overheadFlags(o *protocol.WorkloadOverhead) []string {
	var flags []string
	cpu, what := o.CPUPerOpPct, "CPU per operation"
	if o.BPFCPUPct > 0 {
		cpu, what = o.BPFCPUPct, "BPF run time"
	}
	if cpu >= targetCPUPct {
		flags = append(flags, fmt.Sprintf("cpu: %s %+.2f%% (target < %.0f%%)", what, cpu, targetCPUPct))
	}
	if o.P99DeltaMS >= targetP99DeltaMS {
		flags = append(flags, fmt.Sprintf("p99: +%.2f ms (target < %.0f ms)", o.P99DeltaMS, targetP99DeltaMS))
	}
	if o.MemoryMB > targetMemoryMB {
		flags = append(flags, fmt.Sprintf("memory: %.1f MB (target 50–150 MB)", o.MemoryMB))
	}
	if o.StartupMS >= targetStartupMS {
		flags = append(flags, fmt.Sprintf("startup: %.0f ms (target < 5 s)", o.StartupMS))
	}
	return flags
}

// growthPerHour is the growth from first to last in percent per hour.
func growthPerHour(first, last float64, elapsed time.Duration) float64 {
	if first <= 0 || elapsed <= 0 {
		return 0
	}
	return round2((last - first) / first * 100 / elapsed.Hours())
}

func union(a, b map[string]int64) map[string]int64 {
	u := maps.Clone(a)
	if u == nil {
		u = map[string]int64{}
	}
	for k := range b {
		u[k] += 0
	}
	return u
}

func nonNilCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func ms(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
