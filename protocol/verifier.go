package protocol

import "fmt"

// VerifierParams configures the "verifier" check as the guest sees it.
type VerifierParams struct {
	// Objects are the BPF ELF objects to load, with how to load each.
	Objects []VerifierObject `json:"objects"`
	// Programs, when set, are the only programs loaded.
	Programs []string `json:"programs,omitempty"`
	// Expect maps a program name ("PROGRAM" or "OBJECT/PROGRAM") or an
	// object name to what is expected of it.
	Expect map[string]VerifierExpect `json:"expect,omitempty"`
	// LogAlways asks for the instruction-level log even when a program
	// loads (vmrunner repro).
	LogAlways bool `json:"log_always,omitempty"`
	// Attach attaches each loaded program to the hook its section names.
	Attach bool `json:"attach,omitempty"`
	// Budget, when set, fails a program that loads but uses more of the
	// verifier's complexity limit than it allows (COMPLEXITY_BUDGET).
	Budget *VerifierBudget `json:"budget,omitempty"`
}

// VerifierBudget is how much of the verifier's limits a program may use.
type VerifierBudget struct {
	// InsnsPercentOfLimit is the share of the kernel's limit of processed
	// instructions (1000000 since 5.2), in percent.
	InsnsPercentOfLimit float64 `json:"insns_percent_of_limit,omitempty"`
}

// VerifierCheck is the "verifier" check: load every program of the objects
// and report one result per program with the verifier's log.
var VerifierCheck = declare("verifier", RunnerAgent, VerifierParams{})

// Validate implements paramsValidator.
func (p VerifierParams) Validate() []ParamProblem {
	var probs []ParamProblem
	if len(p.Objects) == 0 {
		probs = append(probs, ParamProblem{Key: []string{"objects"}, Msg: "missing objects: expected a list of BPF object paths"})
	}
	for i, o := range p.Objects {
		if o.Path == "" {
			probs = append(probs, ParamProblem{Key: []string{"objects"}, Msg: fmt.Sprintf("objects[%d]: missing path", i)})
		}
	}
	return probs
}

// VerifierObject is one object of the verifier check and what its loader
// would set before loading it.
type VerifierObject struct {
	// Path is the object's path in the guest.
	Path string `json:"path"`
	// Name names its results (verifier/<name>/<program>); empty means
	// the file name without ".o" and bpf2go's "_<arch>_bpfel".
	Name string `json:"name,omitempty"`
	// Arch, when set (x86_64 or arm64), is the only arch that loads it: a
	// per-arch bpf2go build.
	Arch string `json:"arch,omitempty"`
	// Constants are values for volatile const globals, as text typed
	// against the object's BTF (bpfobject.ConstantBytes).
	Constants map[string]string `json:"constants,omitempty"`
	// Maps overrides map sizes.
	Maps map[string]VerifierMap `json:"maps,omitempty"`
	// AttachTo gives freplace and fentry/fexit-on-BPF programs the
	// program they attach to.
	AttachTo map[string]VerifierTarget `json:"attach_to,omitempty"`
	// Modules are kernel modules to load before the object, by name,
	// with their dependencies.
	Modules []string `json:"modules,omitempty"`
	// UprobeBinary is the guest path of the executable its uprobes attach
	// to; "{arch}" in it stands for the guest's arch.
	UprobeBinary string `json:"uprobe_binary,omitempty"`
}

// VerifierMap is what a loader changes in one map.
type VerifierMap struct {
	MaxEntries uint32 `json:"max_entries"`
}

// VerifierTarget is a program of another object (or the same one).
type VerifierTarget struct {
	// Object is the target object's path in the guest.
	Object  string `json:"object"`
	Program string `json:"program"`
}

// GuestUprobeDir is where the host packs the executables given as
// uprobe_binary.
const GuestUprobeDir = "/vmrunner/uprobe"

// TCModules are the kernel modules a legacy tc attach needs (the clsact
// qdisc, the bpf classifier): the host packs them for the verifier check's
// attach step, which loads them on demand.
var TCModules = []string{"sch_ingress", "cls_bpf"}

// VerifierExpect says on which kernels a program should be rejected.
type VerifierExpect struct {
	// Fail lists version ranges (bpfprobe.ParseRange).
	Fail []string `json:"fail,omitempty"`
}

// VerifierDetails is what one "verifier/<object>/<program>" result reports.
type VerifierDetails struct {
	Object             string `json:"object"`
	Program            string `json:"program"`
	Type               string `json:"type,omitempty"`
	Section            string `json:"section,omitempty"`
	Loaded             bool   `json:"loaded"`
	ExpectedFail       bool   `json:"expected_fail"`
	ExpectRange        string `json:"expect_range,omitempty"`
	Kernel             string `json:"kernel,omitempty"`
	InsnsProcessed     int    `json:"insns_processed,omitempty"`
	VerificationTimeNS int64  `json:"verification_time_ns,omitempty"`
	States             int    `json:"states,omitempty"`
	PeakStates         int    `json:"peak_states,omitempty"`
	// InsnsLimit is the kernel's limit of processed instructions as its
	// log says it (1000000 since 5.2); StackDepth the program's frames'
	// stack depths added up (the kernel's limit is 512 bytes).
	InsnsLimit           int    `json:"insns_limit,omitempty"`
	StackDepth           int    `json:"stack_depth,omitempty"`
	LogLevel             uint32 `json:"log_level"`
	LogBytes             int    `json:"log_bytes"`
	LogTruncated         bool   `json:"log_truncated,omitempty"`
	Instructions         int    `json:"instructions,omitempty"`
	VerifiedInstructions uint32 `json:"verified_instructions,omitempty"`
	// TooComplex is a rejection at the verifier's complexity limit.
	TooComplex bool `json:"too_complex,omitempty"`
	// CORE is a rejection of an instruction whose CO-RE relocation found
	// nothing in the kernel's BTF (wrong arch, or a kernel without the
	// type or field).
	CORE bool `json:"core,omitempty"`
	// Errno is the kernel's error number of a failed load ("EACCES",
	// "EINVAL"), when the load reached the kernel.
	Errno string `json:"errno,omitempty"`
	// Step is the loader step that failed before the verifier could run
	// ("create map flows", "attach target").
	Step string `json:"step,omitempty"`
	// Attach is the hook the attach step used ("kprobe vfs_read"), and
	// Attached whether it worked; AttachError says why not.
	Attach      string `json:"attach,omitempty"`
	Attached    bool   `json:"attached,omitempty"`
	AttachError string `json:"attach_error,omitempty"`
}

// VerifierObjectDetails is what the "verifier/<object>" result reports:
// the object's loader steps beyond its programs.
type VerifierObjectDetails struct {
	Object    string   `json:"object"`
	File      string   `json:"file"`
	Programs  int      `json:"programs"`
	Loaded    int      `json:"programs_loaded"`
	Maps      int      `json:"maps"`
	Pinned    []string `json:"pinned,omitempty"`
	Variables int      `json:"variables"`
	Constants []string `json:"constants,omitempty"`
	Resized   []string `json:"resized,omitempty"`
	Modules   []string `json:"modules,omitempty"`
	// Failed lists the loader steps that failed ("populate map jumps: ...").
	Failed []string `json:"failed,omitempty"`
}
