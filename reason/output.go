package reason

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// FromOutput reads a user's program's output (vmrunner exec, the test
// check) for the loader's own error lines — libbpf's ("libbpf: prog 'x':
// failed to find kernel BTF type ID of 'y': -3", its "-- BEGIN PROG LOAD LOG
// --" block) and cilium/ebpf's error strings ("load program: permission
// denied: R1 invalid mem access", "bad CO-RE relocation") — and says why
// the program failed, with the line it read. ok is false when the output
// holds none of them: the program failed for its own reasons.
//
// Such a verdict is a hint: it is read from text the program chose to
// print, not from the loader's error values as Classify's are.
func FromOutput(out []byte) (v Verdict, ok bool) {
	lines := outputLines(out)
	if log := loadLog(lines); hasLog(log) {
		if v, ok := fromLibbpfLog(log); ok {
			return trim(v), true
		}
		return trim(fromLog(Load{}, log)), true
	}
	for _, l := range lines {
		if v, ok := fromLine(l); ok {
			return trim(v), true
		}
	}
	return Verdict{}, false
}

func trim(v Verdict) Verdict {
	v.Detail = text.Truncate(v.Detail, protocol.MaxReasonDetail)
	return v
}

// maxOutputLines bounds the lines FromOutput reads.
const maxOutputLines = 200000

func outputLines(out []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() && len(lines) < maxOutputLines {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	return lines
}

// libbpf (0.7 and later) prints the kernel's verifier log of a program that
// failed to load between these two lines.
const (
	logBegin = "-- BEGIN PROG LOAD LOG --"
	logEnd   = "-- END PROG LOAD LOG --"
)

// loadLog is the first verifier log libbpf printed, or nil.
func loadLog(lines []string) []string {
	for i, l := range lines {
		if !strings.Contains(l, logBegin) {
			continue
		}
		var log []string
		for _, m := range lines[i+1:] {
			if strings.Contains(m, logEnd) {
				break
			}
			log = append(log, m)
		}
		return log
	}
	return nil
}

// fromLibbpfLog reads what libbpf wrote into a verifier log in place of
// the kernel's words for a poisoned instruction: "<invalid CO-RE
// relocation>" followed by "failed to resolve CO-RE relocation <relo>",
// "<invalid kfunc call>" (a weak kfunc the kernel lacks).
func fromLibbpfLog(log []string) (Verdict, bool) {
	for _, l := range log {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "failed to resolve CO-RE relocation"):
			return Verdict{protocol.ReasonCORERelocation, l}, true
		case strings.Contains(l, "<invalid kfunc call>"):
			return Verdict{protocol.ReasonKfuncMissing, l}, true
		}
	}
	return Verdict{}, false
}

var (
	// libbpf: "prog 'x': failed to find kernel BTF type ID of 'y': -3",
	// cilium/ebpf: "find target for fentry y: ...".
	targetIDRE  = regexp.MustCompile(`failed to find kernel BTF type ID of '([^']+)'`)
	findTarget  = regexp.MustCompile(`find target for (\S+ \S+?):`)
	kprobeRE    = regexp.MustCompile(`failed to create (?:kprobe|kretprobe|uprobe|tracepoint) '([^']+)'.*(?:No such file|-2\b)`)
	tpMissingRE = regexp.MustCompile(`tracepoint '([^']+)'.*(?:No such file|-2\b)`)
	// libbpf: "extern (func ksym) 'x': not found in kernel or module BTFs".
	kfuncExternRE = regexp.MustCompile(`extern \(func ksym\) '([^']+)': not found`)
	// libbpf: "prog 'x': failed to attach: Operation not supported",
	// "failed to attach to fentry y: Unknown error 524".
	attachRE = regexp.MustCompile(`(?:failed to attach|attach failed)[^:]*: (.*)$`)
	// libbpf: "map 'events': failed to create: Invalid argument(-22)".
	mapCreateRE = regexp.MustCompile(`map '([^']+)': failed to create: (.*)$`)
	// cilium/ebpf: "load program: permission denied: <the verifier's
	// last line> (12 line(s) omitted)".
	ciliumLoadRE = regexp.MustCompile(`load program: ([a-z ]+): (.+?)(?: \(\d+ line\(s\) omitted\))?$`)
	// cilium/ebpf's UnsupportedFeatureError.
	requiresRE = regexp.MustCompile(`(\S.*?) not supported \(requires >= ([^)]+)\)`)
)

// fromLine reads one line of the program's output.
func fromLine(l string) (Verdict, bool) {
	switch {
	case strings.Contains(l, "failed to resolve CO-RE relocation") || strings.Contains(l, "bad CO-RE relocation"):
		return Verdict{protocol.ReasonCORERelocation, strings.TrimSpace(l)}, true
	case strings.Contains(l, "unknown kfunc"):
		return Verdict{protocol.ReasonKfuncMissing, strings.TrimSpace(l)}, true
	}
	if m := kfuncExternRE.FindStringSubmatch(l); m != nil {
		return Verdict{protocol.ReasonKfuncMissing, m[1]}, true
	}
	if m := targetIDRE.FindStringSubmatch(l); m != nil {
		return Verdict{protocol.ReasonAttachTargetMissing, m[1]}, true
	}
	if m := findTarget.FindStringSubmatch(l); m != nil {
		return Verdict{protocol.ReasonAttachTargetMissing, m[1]}, true
	}
	if m := kprobeRE.FindStringSubmatch(l); m != nil {
		return Verdict{protocol.ReasonAttachTargetMissing, m[1]}, true
	}
	if m := tpMissingRE.FindStringSubmatch(l); m != nil && strings.Contains(l, "libbpf") {
		return Verdict{protocol.ReasonAttachTargetMissing, m[1]}, true
	}
	switch {
	case strings.Contains(l, "failed to find valid kernel BTF") || strings.Contains(l, "Error loading vmlinux BTF") ||
		strings.Contains(l, "load kernel spec") || strings.Contains(l, "no BTF found"):
		return Verdict{protocol.ReasonMissingBTF, strings.TrimSpace(l)}, true
	case strings.Contains(l, "MEMLOCK may be too low") ||
		strings.Contains(l, "RLIMIT_MEMLOCK") && strings.Contains(l, "Operation not permitted"):
		return Verdict{protocol.ReasonMemlock, strings.TrimSpace(l)}, true
	}
	if m := attachRE.FindStringSubmatch(l); m != nil && strings.Contains(l, "libbpf") {
		return attachVerdict(l, m[1]), true
	}
	if m := mapCreateRE.FindStringSubmatch(l); m != nil {
		if strings.Contains(m[2], "Invalid argument") || strings.Contains(m[2], "-22") {
			return Verdict{protocol.ReasonMapTypeUnsupported, "map " + m[1] + ": " + m[2]}, true
		}
		return Verdict{protocol.ReasonLoader, "map " + m[1] + ": " + m[2]}, true
	}
	if m := ciliumLoadRE.FindStringSubmatch(l); m != nil {
		return fromLog(Load{}, []string{m[2]}), true
	}
	if m := requiresRE.FindStringSubmatch(l); m != nil {
		return unsupportedFeature(m[1], m[2]), true
	}
	// A verifier line printed on its own (cilium/ebpf's %+v, a tool that
	// prints the log itself): only the words that say the reason.
	t := strings.TrimSpace(l)
	switch {
	case TooComplex(t):
		return Verdict{protocol.ReasonTooComplex, t}, true
	case strings.Contains(t, "func_info") && strings.Contains(t, "subprogs"):
		return Verdict{protocol.ReasonBPFCallsUnsupported, t}, true
	case strings.Contains(t, "combined stack size"):
		return Verdict{protocol.ReasonStackLimit, t}, true
	}
	if d, ok := helperLine(t); ok {
		return Verdict{protocol.ReasonHelperUnsupported, d}, true
	}
	return Verdict{}, false
}

// attachVerdict is a libbpf attach failure by its errno's words: ENOTSUPP
// (524, which strerror does not know) and EOPNOTSUPP are the kernel saying
// it cannot attach this way, ENOENT that the target is not there.
func attachVerdict(line, why string) Verdict {
	switch {
	case strings.Contains(why, "524") || strings.Contains(why, "not supported") || strings.Contains(why, "-95"):
		return Verdict{protocol.ReasonAttachUnsupported, strings.TrimSpace(line)}
	case strings.Contains(why, "No such file") || strings.Contains(why, "-2)") || strings.HasSuffix(why, "-2"):
		return Verdict{protocol.ReasonAttachTargetMissing, strings.TrimSpace(line)}
	case strings.Contains(why, "not permitted"):
		return Verdict{protocol.ReasonPermission, strings.TrimSpace(line)}
	}
	return Verdict{protocol.ReasonAttachFailed, strings.TrimSpace(line)}
}

// unsupportedFeature is cilium/ebpf's "<name> not supported (requires >=
// <version>)": a map type's, a program type's, a helper's or another
// feature's name.
func unsupportedFeature(name, version string) Verdict {
	if i := strings.LastIndex(name, ": "); i >= 0 {
		name = name[i+2:] // the error's context before it
	}
	d := name + " (since " + version + ")"
	low := strings.ToLower(name)
	switch {
	case strings.Contains(low, "map") || strings.Contains(low, "ring buffer") || strings.Contains(low, "ringbuf"):
		return Verdict{protocol.ReasonMapTypeUnsupported, d}
	case strings.HasPrefix(name, "bpf_"):
		return Verdict{protocol.ReasonHelperUnsupported, d}
	case strings.Contains(low, "bpf2bpf") || strings.Contains(low, "function calls"):
		return Verdict{protocol.ReasonBPFCallsUnsupported, d}
	case strings.Contains(low, "link") || strings.Contains(low, "attach") || strings.Contains(low, "tcx") ||
		strings.Contains(low, "multi"):
		return Verdict{protocol.ReasonAttachUnsupported, d}
	}
	return Verdict{protocol.ReasonProgTypeUnsupported, d}
}
