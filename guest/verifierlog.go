package guest

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
)

// statsRE match the verifier's statistics lines (LogLevelStats).
var (
	processedRE = regexp.MustCompile(`processed (\d+) insns \(limit \d+\) max_states_per_insn \d+ total_states (\d+) peak_states (\d+)`)
	verifyTime  = regexp.MustCompile(`verification time (\d+) usec`)
)

// verifierStats are the figures of the verifier's statistics lines.
type verifierStats struct {
	insns, states, peak int
	timeNS              int64
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
		s.states, _ = strconv.Atoi(last[2])
		s.peak, _ = strconv.Atoi(last[3])
	}
	if m := verifyTime.FindAllStringSubmatch(log, -1); len(m) > 0 {
		us, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
		s.timeNS = us * 1000
	}
	return s
}

// lastVerifierLine is the last line of a log that says something about the
// program rather than the verifier's own statistics.
func lastVerifierLine(log []string) string {
	for i := len(log) - 1; i >= 0; i-- {
		l := strings.TrimSpace(log[i])
		switch {
		case l == "",
			strings.HasPrefix(l, "processed "),
			strings.HasPrefix(l, "verification time"),
			strings.HasPrefix(l, "stack depth"),
			strings.HasPrefix(l, "max_states_per_insn"):
			continue
		}
		return text.Truncate(l, 512)
	}
	return ""
}

// complexityMarkers are what the kernel says when it gives up on a program
// rather than finding it wrong: the limit of processed instructions
// (BPF_COMPLEXITY_LIMIT_INSNS, one million since 5.2) or of pending
// branches (BPF_COMPLEXITY_LIMIT_JMP_SEQ).
var complexityMarkers = []string{"BPF program is too large", "jumps is too complex"}

// tooComplex reports whether a rejection is the verifier's complexity limit.
func tooComplex(reason string) bool {
	for _, m := range complexityMarkers {
		if strings.Contains(reason, m) {
			return true
		}
	}
	return false
}

// coreMarker is the source line cilium/ebpf gives an instruction whose CO-RE
// relocation found no match in the kernel's BTF; the instruction is replaced
// by a call to an invalid helper, which the verifier rejects as
// "invalid func unknown#195896080" (btf.COREBadRelocationSentinel).
const coreMarker = "poisoned by CO-RE"

// attachTargetMarkers are the kernel's words for a tracing or extension
// program loaded without a target: the loader's input, not the program, is
// at fault.
var attachTargetMarkers = []string{
	"Tracing programs must provide btf_id",
	"Syscall programs can only be loaded",
	"FENTRY/FEXIT program can only be attached to another program annotated with BTF",
	"Extension programs should be JITed",
	"Cannot replace static functions",
	"attach_btf_id",
}

// decisiveLine returns the line of log that says why a program was
// rejected: the first line that names a poisoned CO-RE relocation, when
// the program failed on one, else the last meaningful line.
func decisiveLine(log []string) (line string, core bool) {
	last := lastVerifierLine(log)
	if !strings.Contains(last, "unknown#195896080") && !strings.Contains(last, coreMarker) {
		return last, false
	}
	for _, l := range log {
		if i := strings.Index(l, "instruction "+coreMarker); i >= 0 {
			// 6.12 prints " @ :0" for a line with no file.
			return text.Truncate(strings.TrimSuffix(strings.TrimSpace(l[i:]), " @ :0"), 512), true
		}
	}
	return last, true
}

// missingAttachTarget reports whether a rejection says the program needed
// an attach target it was not given.
func missingAttachTarget(reason string) bool {
	for _, m := range attachTargetMarkers {
		if strings.Contains(reason, m) {
			return true
		}
	}
	return false
}
