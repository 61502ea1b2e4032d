package protocol

// Reason says in one stable upper-case word why a result is not a pass: a
// team greps, gates and counts by it. The guest decides the BPF reasons
// (package reason classifies the loader's error values, errno and the
// verifier's log); the host gives the VM-level ones from its error kinds
// (results.Record.ReasonCode). docs/reasons.md is the same table for people;
// a test holds the two together.
type Reason string

// BPF reasons: what the kernel or the loader refused.
const (
	ReasonMissingBTF          Reason = "MISSING_BTF"
	ReasonCORERelocation      Reason = "CORE_RELOCATION"
	ReasonProgTypeUnsupported Reason = "PROG_TYPE_UNSUPPORTED"
	ReasonMapTypeUnsupported  Reason = "MAP_TYPE_UNSUPPORTED"
	ReasonHelperUnsupported   Reason = "HELPER_UNSUPPORTED"
	ReasonKfuncMissing        Reason = "KFUNC_MISSING"
	ReasonAttachTargetMissing Reason = "ATTACH_TARGET_MISSING"
	ReasonAttachUnsupported   Reason = "ATTACH_UNSUPPORTED"
	ReasonAttachFailed        Reason = "ATTACH_FAILED"
	ReasonBPFCallsUnsupported Reason = "BPF_CALLS_UNSUPPORTED"
	ReasonTooComplex          Reason = "TOO_COMPLEX"
	ReasonStackLimit          Reason = "STACK_LIMIT"
	ReasonVerifierRejected    Reason = "VERIFIER_REJECTED"
	ReasonPermission          Reason = "PERMISSION"
	ReasonMemlock             Reason = "MEMLOCK"
	ReasonLoader              Reason = "LOADER"
	ReasonUnexpectedLoad      Reason = "UNEXPECTED_LOAD"
	ReasonFeatureMissing      Reason = "FEATURE_MISSING"
	ReasonProbeError          Reason = "PROBE_ERROR"
	ReasonWorkload            Reason = "WORKLOAD"
	ReasonProgramFailed       Reason = "PROGRAM_FAILED"
	ReasonCheckFailed         Reason = "CHECK_FAILED"
	ReasonSkipped             Reason = "SKIPPED"
	ReasonComplexityBudget    Reason = "COMPLEXITY_BUDGET"
)

// VM-level reasons: the machinery, not the program (results.ErrorKind).
const (
	ReasonKernelPanic   Reason = "KERNEL_PANIC"
	ReasonTimeout       Reason = "TIMEOUT"
	ReasonBootTimeout   Reason = "BOOT_TIMEOUT"
	ReasonAgent         Reason = "AGENT"
	ReasonQEMU          Reason = "QEMU"
	ReasonProtocol      Reason = "PROTOCOL"
	ReasonInitramfs     Reason = "INITRAMFS"
	ReasonKernelFetch   Reason = "KERNEL_UNAVAILABLE"
	ReasonBadInput      Reason = "BAD_INPUT"
	ReasonInterrupted   Reason = "INTERRUPTED"
	ReasonIncomplete    Reason = "INCOMPLETE"
	ReasonMissingShard  Reason = "MISSING_SHARD"
	ReasonCheckError    Reason = "CHECK_ERROR"
	ReasonUnknownReason Reason = "UNKNOWN"
)

// ReasonInfo is one row of the reasons table.
type ReasonInfo struct {
	Reason  Reason
	Meaning string
	Action  string // what to do
}

// Reasons is every reason, in the order docs/reasons.md lists them.
var Reasons = []ReasonInfo{
	{ReasonMissingBTF, "the kernel has no BTF (/sys/kernel/btf/vmlinux) or lacks a type the check requires", "build the kernel with CONFIG_DEBUG_INFO_BTF=y, or give the kernel an external BTF file (btf: in the matrix, BTFHub)"},
	{ReasonCORERelocation, "a CO-RE relocation found no matching type or field in the kernel's BTF; the detail names the relocation", "guard the access with bpf_core_field_exists / bpf_core_type_exists, or build the object for this arch"},
	{ReasonProgTypeUnsupported, "the kernel does not know the program type", "expect a failure on kernels before the type's release, or fall back to an older program type"},
	{ReasonMapTypeUnsupported, "the kernel cannot create a map of this type (or with these flags)", "expect a failure before the map type's release, or fall back (perf event array instead of ring buffer)"},
	{ReasonHelperUnsupported, "the program calls a helper the kernel lacks, or one not allowed for its program type; the detail names it and its release", "guard the call with a feature probe and a fallback, or expect a failure before that release"},
	{ReasonKfuncMissing, "a kfunc the program calls is not in the kernel's (or a loaded module's) BTF", "load the module that provides it (modules: in the matrix), or declare it __weak and check bpf_ksym_exists"},
	{ReasonAttachTargetMissing, "the function, tracepoint or program the program attaches to does not exist in this kernel, or none was given", "attach to a function every kernel has, or make the attach optional; freplace/fentry on a BPF program needs attach_to"},
	{ReasonAttachUnsupported, "the program loaded but the kernel cannot attach it this way (tcx before 6.6, fentry on arm64 before 6.0)", "fall back to an older attach method on those kernels, or expect the failure"},
	{ReasonAttachFailed, "the program loaded but attaching it failed for another reason", "read the attach error in the record's details"},
	{ReasonBPFCallsUnsupported, "the kernel rejects the program's BPF-to-BPF calls or callbacks (func_info / subprogram mismatch, bpf_loop callbacks)", "inline the functions (__always_inline) or expect a failure on those kernels"},
	{ReasonTooComplex, "the verifier gave up: one million instructions processed, or too many pending branches (jump sequence) or states", "simplify the program: split it with tail calls, bound loops tighter, use bpf_loop; see report verifier"},
	{ReasonStackLimit, "the program's stack (512 bytes, combined over calls) is exceeded", "move large buffers into a per-CPU array map"},
	{ReasonVerifierRejected, "the verifier found the program unsafe (invalid memory access, unbounded loop, bad return value...); the detail is the line it stopped at", "fix the program at the instruction the log points at (the log is in the record's artifacts)"},
	{ReasonPermission, "the kernel refused the operation for lack of privilege (EPERM without a memlock limit)", "run with CAP_BPF/CAP_SYS_ADMIN, or check lockdown and unprivileged_bpf_disabled"},
	{ReasonMemlock, "RLIMIT_MEMLOCK was too low for the maps or program (kernels before 5.11 charge them to it)", "raise the limit (rlimit.RemoveMemlock, ulimit -l unlimited)"},
	{ReasonLoader, "the loader could not prepare the object (a constant it lacks, a map size of 0, an unreadable ELF)", "fix the object's loader settings in the matrix (constants:, maps:, attach_to:)"},
	{ReasonUnexpectedLoad, "the program loaded (or attached) where the matrix expects it to be rejected", "correct expect: in the matrix, or find out why this kernel accepts it"},
	{ReasonFeatureMissing, "a probed feature is missing from a kernel at or past the release that added it", "the kernel's config left it out: check the config option bpfprobe names"},
	{ReasonProbeError, "a feature probe could not give an answer", "report it: vmrunner should only ask what it can answer"},
	{ReasonWorkload, "the workload's traffic was not observed as sent", "read the per-protocol counts in the record's details"},
	{ReasonProgramFailed, "the user's program (exec, test) failed or exited non-zero", "read its output in the record's artifacts"},
	{ReasonCheckFailed, "the check failed for a reason no more precise code covers", "read the record's message"},
	{ReasonComplexityBudget, "the program loaded but used more of the verifier's instruction limit than the matrix's budget allows (verifier: {budget: {insns_percent_of_limit: N}})", "simplify the program before a kernel rejects it as TOO_COMPLEX, or raise the budget; see vmrunner report verifier"},
	{ReasonSkipped, "the check or program was not run here (another arch's object, no program type)", "nothing, unless it should have run"},
	{ReasonKernelPanic, "the guest kernel panicked", "read the console excerpt; a BPF program may have crashed the kernel"},
	{ReasonTimeout, "the VM or a check overran its time limit", "raise timeout / check_timeout, or read the task dump in console.log"},
	{ReasonBootTimeout, "the guest agent did not start in time", "raise --boot-timeout (TCG is slow), or read console.log"},
	{ReasonAgent, "the guest agent stopped before reporting done", "read console.log; report it if the agent crashed"},
	{ReasonQEMU, "QEMU was missing, failed to start or died", "install QEMU for the arch; read its stderr in the message"},
	{ReasonProtocol, "the guest sent something the host refused", "report it"},
	{ReasonInitramfs, "the initramfs could not be built, or the kernel could not start it", "read the message; check the kernel's modules"},
	{ReasonKernelFetch, "the kernel could not be resolved or downloaded", "check the mirror and the matrix's source"},
	{ReasonBadInput, "the matrix or a file it names is wrong", "fix the input the message names"},
	{ReasonInterrupted, "the run was interrupted", "run it again"},
	{ReasonIncomplete, "the run did not finish and has no record of this VM", "run it again"},
	{ReasonMissingShard, "a merge had no shard run for this VM", "run the missing shard"},
	{ReasonCheckError, "the check itself could not run in the guest", "read the message; report it if it is vmrunner's fault"},
	{ReasonUnknownReason, "a result carries no reason this build knows", "upgrade vmrunner to read it"},
}

// Info returns r's row of the table, and whether it has one.
func (r Reason) Info() (ReasonInfo, bool) {
	for _, ri := range Reasons {
		if ri.Reason == r {
			return ri, true
		}
	}
	return ReasonInfo{}, false
}

// MaxReasonDetail bounds Result.ReasonDetail.
const MaxReasonDetail = 512

// Valid reports whether r is a reason: upper-case letters, digits and
// underscores, at most 32 of them. A reason this build does not list is
// valid (a newer guest's); readers show it as it is.
func (r Reason) Valid() bool {
	if r == "" || len(r) > 32 {
		return false
	}
	for _, c := range []byte(r) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
