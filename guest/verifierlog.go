package guest

import (
	"regexp"
	"strconv"
	"strings"
)

// statsRE match the verifier's statistics lines (LogLevelStats).
var (
	processedRE = regexp.MustCompile(`processed (\d+) insns \(limit (\d+)\) max_states_per_insn \d+ total_states (\d+) peak_states (\d+)`)
	verifyTime  = regexp.MustCompile(`verification time (\d+) usec`)
	// stackDepthRE is the stack of each frame: "stack depth 320+320".
	stackDepthRE = regexp.MustCompile(`(?m)^stack depth ([\d+]+)$`)
)

// verifierStats are the figures of the verifier's statistics lines.
type verifierStats struct {
	insns, states, peak int
	timeNS              int64
	// limit is the complexity limit the kernel printed (1000000 since
	// 5.2); stack the frames' stack depths added up, as the kernel
	// checks them against 512 bytes.
	limit, stack int
	// found is whether the log had a "processed N insns" line at all.
	found bool
}

// parseVerifierStats reads instructions processed, total and peak states,
// and the verification time from a verifier log; absent figures are 0.
func parseVerifierStats(log string) verifierStats {
	var s verifierStats
	if m := processedRE.FindAllStringSubmatch(log, -1); len(m) > 0 {
		last := m[len(m)-1]
		s.found = true
		s.insns, _ = strconv.Atoi(last[1])
		s.limit, _ = strconv.Atoi(last[2])
		s.states, _ = strconv.Atoi(last[3])
		s.peak, _ = strconv.Atoi(last[4])
	}
	if m := stackDepthRE.FindAllStringSubmatch(log, -1); len(m) > 0 {
		for _, f := range strings.Split(m[len(m)-1][1], "+") {
			n, _ := strconv.Atoi(f)
			s.stack += n
		}
	}
	if m := verifyTime.FindAllStringSubmatch(log, -1); len(m) > 0 {
		us, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
		s.timeNS = us * 1000
	}
	return s
}
