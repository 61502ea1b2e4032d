package reason

import (
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
)

// LastLine is the last line of a verifier log that says something about
// the program rather than the verifier's own statistics.
func LastLine(log []string) string {
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
// (BPF_COMPLEXITY_LIMIT_INSNS, one million since 5.2), of pending branches
// (BPF_COMPLEXITY_LIMIT_JMP_SEQ) or of states per instruction.
var complexityMarkers = []string{"BPF program is too large", "jumps is too complex", "too many states"}

// TooComplex reports whether a rejection's line is the verifier's
// complexity limit.
func TooComplex(line string) bool { return containsAny(line, complexityMarkers) }

// coreMarker is the source line cilium/ebpf gives an instruction whose CO-RE
// relocation found no match in the kernel's BTF; the instruction is replaced
// by a call to an invalid helper (btf.COREBadRelocationSentinel), which the
// verifier rejects as "invalid func unknown#195896080".
const coreMarker = "poisoned by CO-RE"

// coreSentinel is btf.COREBadRelocationSentinel as the verifier prints it.
const coreSentinel = "unknown#195896080"

// kfuncSentinel is cilium/ebpf's poisoned call of a weak kfunc the kernel
// lacks (kfuncCallPoisonBase, 0xdedc0de).
const kfuncSentinel = "unknown#233685214"

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

// MissingAttachTarget reports whether a rejection's line says the program
// needed an attach target it was not given.
func MissingAttachTarget(line string) bool { return containsAny(line, attachTargetMarkers) }

// DecisiveLine returns the line of a verifier log that says why a program
// was rejected: the line naming a poisoned CO-RE relocation when the
// program failed on one (core true), else the last meaningful line.
func DecisiveLine(log []string) (line string, core bool) {
	last := LastLine(log)
	if !strings.Contains(last, coreSentinel) && !strings.Contains(last, coreMarker) {
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

func containsAny(s string, subs []string) bool {
	for _, m := range subs {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
