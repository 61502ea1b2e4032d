package reason

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// Load is what is known about one program's load and attach.
type Load struct {
	// Err is the load's error, nil when the program loaded. A
	// *ebpf.VerifierError carries the kernel's errno and log.
	Err error
	// Program is the program's spec: its type, attach target and
	// instructions (kfunc calls).
	Program *ebpf.ProgramSpec
	// Map is the map whose creation failed before the program could load,
	// if one did.
	Map *ebpf.MapSpec
	// KernelTypes is a step that read the kernel's types (its BTF or an
	// external one) before the load and failed: no BTF to relocate against.
	KernelTypes bool
	// ProgTypeMissing and MapTypeMissing are the kernel's answers to a
	// probe of the program's (Map's) type, asked when a load failed
	// without a verifier log.
	ProgTypeMissing, MapTypeMissing bool
	// MemlockLimited is a finite RLIMIT_MEMLOCK when the load ran.
	MemlockLimited bool
	// AttachErr is the attach step's error for a program that loaded.
	AttachErr error
	// Attach names the hook attached to ("fentry vfs_read").
	Attach string
}

// Verdict is why a program did not load or attach.
type Verdict struct {
	Reason protocol.Reason
	Detail string // what it is about; at most protocol.MaxReasonDetail bytes
}

// Classify says why a program did not load or attach; a zero Verdict when
// it did both.
func Classify(l Load) Verdict {
	var v Verdict
	switch {
	case l.Err != nil:
		v = classifyLoad(l)
	case l.AttachErr != nil:
		v = classifyAttach(l)
	}
	v.Detail = text.Truncate(v.Detail, protocol.MaxReasonDetail)
	return v
}

func classifyLoad(l Load) Verdict {
	err := l.Err
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) && hasLog(ve.Log) {
		return fromLog(l, ve.Log)
	}
	switch {
	case l.KernelTypes:
		return Verdict{protocol.ReasonMissingBTF, "no kernel BTF to relocate the program against"}
	case errors.Is(err, unix.EPERM) && l.MemlockLimited:
		return Verdict{protocol.ReasonMemlock, "EPERM with RLIMIT_MEMLOCK set"}
	case errors.Is(err, unix.EPERM):
		return Verdict{protocol.ReasonPermission, "EPERM"}
	case l.Map != nil && (l.MapTypeMissing || errors.Is(err, ebpf.ErrNotSupported)):
		return Verdict{protocol.ReasonMapTypeUnsupported, mapDetail(l.Map)}
	case l.Map != nil:
		return Verdict{protocol.ReasonLoader, "create map " + l.Map.Name + errnoNote(err)}
	case errors.Is(err, ebpf.ErrNotSupported) && tracing(l.Program):
		// cilium/ebpf looked for the attach target in the kernel's BTF
		// (btf.ErrNotFound becomes an UnsupportedFeatureError).
		return Verdict{protocol.ReasonAttachTargetMissing, targetDetail(l.Program)}
	case l.ProgTypeMissing:
		return Verdict{protocol.ReasonProgTypeUnsupported, progDetail(l.Program)}
	case errors.Is(err, ebpf.ErrNotSupported) && callsKfunc(l.Program):
		return Verdict{protocol.ReasonKfuncMissing, kfuncs(l.Program)}
	case errors.Is(err, btf.ErrNotFound):
		return Verdict{protocol.ReasonMissingBTF, "no BTF found"}
	case errors.Is(err, ebpf.ErrNotSupported):
		// cilium/ebpf's feature probes: bpf2bpf calls, BTF, a link type.
		if hasFunctionCalls(l.Program) {
			return Verdict{protocol.ReasonBPFCallsUnsupported, "the kernel does not support BPF-to-BPF calls"}
		}
		return Verdict{protocol.ReasonProgTypeUnsupported, progDetail(l.Program)}
	}
	if errors.As(err, &ve) {
		// Refused with no log: before the verifier ran.
		return Verdict{protocol.ReasonVerifierRejected, "refused before verification" + errnoNote(err)}
	}
	return Verdict{protocol.ReasonLoader, errnoNote(err)}
}

// fromLog reads a verifier log: the kernel's words for why it refused.
func fromLog(l Load, log []string) Verdict {
	line, core := DecisiveLine(log)
	switch {
	case core:
		if rel := coreRelocation(l.Program, log); rel != "" {
			line += ": " + rel
		}
		return Verdict{protocol.ReasonCORERelocation, line}
	case strings.Contains(line, kfuncSentinel) || kfuncLine(line):
		return Verdict{protocol.ReasonKfuncMissing, kfuncs(l.Program)}
	case TooComplex(line):
		return Verdict{protocol.ReasonTooComplex, line}
	case MissingAttachTarget(line):
		return Verdict{protocol.ReasonAttachTargetMissing, line}
	case strings.Contains(line, "func_info") || strings.Contains(line, "function calls to other bpf functions") ||
		strings.Contains(line, "callbacks are not allowed"):
		return Verdict{protocol.ReasonBPFCallsUnsupported, line}
	case stackLine(line):
		return Verdict{protocol.ReasonStackLimit, line}
	}
	if d, ok := helperLine(line); ok {
		return Verdict{protocol.ReasonHelperUnsupported, d}
	}
	if line == "" {
		line = "rejected" + errnoNote(l.Err)
	}
	return Verdict{protocol.ReasonVerifierRejected, line}
}

func classifyAttach(l Load) Verdict {
	err := l.AttachErr
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, btf.ErrNotFound) || errors.Is(err, unix.ENOENT):
		return Verdict{protocol.ReasonAttachTargetMissing, l.Attach}
	case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) ||
		errors.Is(err, unix.Errno(524)): // ENOTSUPP, the kernel's internal "not supported"
		return Verdict{protocol.ReasonAttachUnsupported, l.Attach}
	case errors.Is(err, unix.EPERM):
		return Verdict{protocol.ReasonPermission, l.Attach}
	}
	return Verdict{protocol.ReasonAttachFailed, strings.TrimSpace(l.Attach + errnoNote(err))}
}

// helperRE matches the verifier's refusals of a helper call: an ID the
// kernel does not know ("invalid func unknown#181"), or a helper the
// program's type may not call ("unknown func bpf_get_current_pid_tgid#14",
// "program of this type cannot use helper bpf_probe_read#4").
var helperRE = regexp.MustCompile(`(?:invalid func|unknown func|cannot use helper) (\S+)#(\d+)`)

// helperLine names the helper a rejection is about, with the release that
// added it when bpfprobe's table has it.
func helperLine(line string) (string, bool) {
	m := helperRE.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	id, err := strconv.Atoi(m[2])
	if err != nil {
		return "", false
	}
	name := m[1]
	if name == "unknown" {
		name = helperName(asm.BuiltinFunc(id))
	}
	for _, f := range bpfprobe.Features {
		if f.Kind == bpfprobe.KindHelper && int(f.Helper) == id {
			if m[1] == "unknown" {
				return fmt.Sprintf("%s (since %s, commit %s)", name, f.Since, f.Commit), true
			}
			return fmt.Sprintf("%s: not for this program type", name), true
		}
	}
	if m[1] == "unknown" {
		return name + ": unknown to this kernel", true
	}
	return name + ": not for this program type", true
}

// helperName is "bpf_loop" for asm.FnLoop.
func helperName(fn asm.BuiltinFunc) string {
	s := fn.String() // FnLoop
	if !strings.HasPrefix(s, "Fn") {
		return fmt.Sprintf("helper #%d", int(fn))
	}
	var b strings.Builder
	b.WriteString("bpf")
	for i, c := range s[2:] {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		} else if i == 0 {
			b.WriteByte('_')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// stackLine reports the verifier's words for a frame over the 512-byte
// stack or a call chain over it combined.
func stackLine(line string) bool {
	return strings.Contains(line, "combined stack size") ||
		(strings.Contains(line, "stack") && strings.Contains(line, "too large")) ||
		strings.Contains(line, "stack depth") ||
		strings.Contains(line, "tail_calls are not allowed when call stack")
}

// kfuncLine is the verifier refusing a kernel function call.
func kfuncLine(line string) bool {
	return strings.Contains(line, "calling kernel function") || strings.Contains(line, "kernel btf_id") ||
		strings.Contains(line, "kfunc")
}

func hasLog(log []string) bool {
	for _, l := range log {
		if strings.TrimSpace(l) != "" {
			return true
		}
	}
	return false
}

func tracing(p *ebpf.ProgramSpec) bool {
	if p == nil {
		return false
	}
	switch p.Type {
	case ebpf.Tracing, ebpf.LSM, ebpf.Extension:
		return true
	}
	return false
}

func callsKfunc(p *ebpf.ProgramSpec) bool {
	return p != nil && kfuncs(p) != ""
}

// kfuncs names the kfuncs a program calls.
func kfuncs(p *ebpf.ProgramSpec) string {
	if p == nil {
		return ""
	}
	var names []string
	for _, ins := range p.Instructions {
		if !ins.IsKfuncCall() {
			continue
		}
		switch fn := btf.FuncMetadata(&ins); {
		case fn != nil:
			names = append(names, fn.Name)
		case ins.Reference() != "":
			names = append(names, ins.Reference()) // the ELF's symbol
		}
	}
	return strings.Join(names, ", ")
}

func hasFunctionCalls(p *ebpf.ProgramSpec) bool {
	if p == nil {
		return false
	}
	for _, ins := range p.Instructions {
		if ins.IsFunctionReference() {
			return true
		}
	}
	return false
}

func progDetail(p *ebpf.ProgramSpec) string {
	if p == nil {
		return ""
	}
	for _, f := range bpfprobe.Features {
		if f.Kind == bpfprobe.KindProgram && f.Program == p.Type {
			return fmt.Sprintf("program type %s (since %s, commit %s)", f.Name, f.Since, f.Commit)
		}
	}
	return "program type " + p.Type.String()
}

func mapDetail(m *ebpf.MapSpec) string {
	for _, f := range bpfprobe.Features {
		if f.Kind == bpfprobe.KindMap && f.Map == m.Type {
			return fmt.Sprintf("map %s of type %s (since %s, commit %s)", m.Name, f.Name, f.Since, f.Commit)
		}
	}
	return fmt.Sprintf("map %s of type %s", m.Name, m.Type)
}

func targetDetail(p *ebpf.ProgramSpec) string {
	if p.AttachTo == "" {
		return "no attach target given"
	}
	return p.AttachTo + " (section " + p.SectionName + ")"
}

// errnoNote is " (EINVAL)" for an error carrying an errno.
func errnoNote(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return " (" + unix.ErrnoName(errno) + ")"
	}
	return ""
}

// poisonedRE is the verifier's line for the poisoned call cilium/ebpf put
// where a CO-RE relocation failed: "12: (85) call unknown#195896080".
var poisonedRE = regexp.MustCompile(`^(\d+): \(85\) call ` + coreSentinel)

// coreRelocation names the relocation that failed: the object's relocation
// at the instruction the verifier stopped at ("CORERelocation(byte_off,
// Struct:"pt_regs"[0:14], local_id=3)"), or "".
func coreRelocation(p *ebpf.ProgramSpec, log []string) string {
	if p == nil {
		return ""
	}
	at := -1
	for _, l := range log {
		if m := poisonedRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			at, _ = strconv.Atoi(m[1])
			break
		}
	}
	if at < 0 {
		return ""
	}
	iter := p.Instructions.Iterate()
	for iter.Next() {
		if int(iter.Offset) == at {
			if rel := btf.CORERelocationMetadata(iter.Ins); rel != nil {
				return rel.String()
			}
			return ""
		}
	}
	return ""
}
