package reason

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// spec returns a program of one of the repository's BPF objects.
func spec(t *testing.T, object, program string) *ebpf.ProgramSpec {
	t.Helper()
	cs, err := ebpf.LoadCollectionSpec(filepath.Join("..", "testdata", "bpf", object))
	if err != nil {
		t.Fatal(err)
	}
	p := cs.Programs[program]
	if p == nil {
		t.Fatalf("no program %s in %s", program, object)
	}
	return p
}

func mapSpec(t *testing.T, object, name string) *ebpf.MapSpec {
	t.Helper()
	cs, err := ebpf.LoadCollectionSpec(filepath.Join("..", "testdata", "bpf", object))
	if err != nil {
		t.Fatal(err)
	}
	return cs.Maps[name]
}

// rejected is the *ebpf.VerifierError of a fixture: a verifier log captured
// by the verifier check in a VM (matrices/reasons.yaml), without the lines
// vmrunner added (they start with "# "), and the errno the kernel returned
// (the record's details.errno).
func rejected(t *testing.T, fixture string, cause error) error {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "# ") {
			log = append(log, l)
		}
	}
	return fmt.Errorf("load program: %w", &ebpf.VerifierError{Cause: cause, Log: log})
}

// TestClassify replays what the default kernels said, each case as the VM
// gave it: the fixture's log and errno, the object's own program spec, the
// loader's error values as cilium/ebpf v0.22 builds them.
func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name   string
		load   func(t *testing.T) Load
		reason protocol.Reason
		detail string // a part of the detail
	}{
		{"5.10 bpf_loop callback: func_info mismatch", func(t *testing.T) Load {
			return Load{Err: rejected(t, "5.10-x86_64-probes-uses_bpf_loop.log", unix.EINVAL), Program: spec(t, "probes.o", "uses_bpf_loop")}
		}, protocol.ReasonBPFCallsUnsupported, "func_info"},
		{"6.1 helper not for socket filters", func(t *testing.T) Load {
			return Load{Err: rejected(t, "6.1-x86_64-reasons-helper_for_type.log", unix.EINVAL), Program: spec(t, "loader/reasons.o", "helper_for_type")}
		}, protocol.ReasonHelperUnsupported, "bpf_get_current_pid_tgid: not for this program type"},
		{"6.12 arm64 read outside the stack", func(t *testing.T) Load {
			return Load{Err: rejected(t, "6.12-arm64-probes-rejected_stack_oob.log", unix.EACCES), Program: spec(t, "probes.o", "rejected_stack_oob")}
		}, protocol.ReasonVerifierRejected, "invalid read from stack R10 off=8 size=8"},
		{"6.1 arm64 x86 object: CO-RE relocation", func(t *testing.T) Load {
			// cilium/ebpf replaces EINVAL by its own "bad CO-RE relocation".
			return Load{Err: rejected(t, "6.1-arm64-wrong_arch-read_count.log", errors.New("bad CO-RE relocation")), Program: spec(t, "loader/wrong_arch.o", "read_count")}
		}, protocol.ReasonCORERelocation, `instruction poisoned by CO-RE: CORERelocation(`},
		{"5.10 arm64 one million instructions", func(t *testing.T) Load {
			return Load{Err: rejected(t, "5.10-arm64-complexity-too_complex.log", unix.E2BIG), Program: spec(t, "loader/complexity.o", "too_complex")}
		}, protocol.ReasonTooComplex, "Processed 1000001 insn"},
		{"6.1 one million instructions", func(t *testing.T) Load {
			return Load{Err: rejected(t, "6.1-x86_64-complexity-too_complex.log", unix.E2BIG), Program: spec(t, "loader/complexity.o", "too_complex")}
		}, protocol.ReasonTooComplex, "BPF program is too large"},
		{"6.12 two frames of 320 bytes", func(t *testing.T) Load {
			return Load{Err: rejected(t, "6.12-x86_64-reasons-stack_limit.log", unix.EACCES), Program: spec(t, "loader/reasons.o", "stack_limit")}
		}, protocol.ReasonStackLimit, "combined stack size of 2 calls is 640"},
		{"5.10 netfilter program: refused without a log", func(t *testing.T) Load {
			// The kernel's answer to features.HaveProgramType(Netfilter) on
			// 5.10 was ErrNotSupported.
			return Load{Err: rejected(t, "5.10-x86_64-reasons-prog_type_new.log", unix.EINVAL), Program: spec(t, "loader/reasons.o", "prog_type_new"), ProgTypeMissing: true}
		}, protocol.ReasonProgTypeUnsupported, "netfilter (since 6.4"},
		{"5.10 bloom filter map", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("create map seen: map create: %w", unix.EINVAL), Program: spec(t, "loader/reasons.o", "map_type_new"),
				Map: mapSpec(t, "loader/reasons.o", "seen"), MapTypeMissing: true}
		}, protocol.ReasonMapTypeUnsupported, "bloom_filter (since 5.16"},
		{"a map left at max_entries 0", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("create map flows: map create: %w (MaxEntries may be incorrectly set to zero)", unix.EINVAL),
				Program: spec(t, "loader/sizes.o", "track_flows"), Map: mapSpec(t, "loader/sizes.o", "flows")}
		}, protocol.ReasonLoader, "create map flows (EINVAL)"},
		{"6.1 fentry on a function 5.16 renamed", func(t *testing.T) Load {
			// cilium/ebpf: btf.ErrNotFound becomes an UnsupportedFeatureError.
			return Load{Err: fmt.Errorf("attach Tracing/TraceFEntry: fentry account_page_dirtied: %w", ebpf.ErrNotSupported),
				Program: spec(t, "loader/reasons.o", "fentry_renamed")}
		}, protocol.ReasonAttachTargetMissing, "account_page_dirtied"},
		{"a module's kfunc, module not loaded", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("fixing up kfuncs: kfunc %q: %w", "bpf_xdp_ct_lookup", ebpf.ErrNotSupported),
				Program: spec(t, "loader/conntrack.o", "ct_lookup")}
		}, protocol.ReasonKfuncMissing, "bpf_xdp_ct_lookup, bpf_ct_release"},
		{"no kernel BTF", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("load kernel types: %w", ebpf.ErrNotSupported), KernelTypes: true, Program: spec(t, "probes.o", "core_task_pid")}
		}, protocol.ReasonMissingBTF, "no kernel BTF"},
		{"EPERM under a memlock limit", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM), MemlockLimited: true}
		}, protocol.ReasonMemlock, "RLIMIT_MEMLOCK"},
		{"EPERM", func(t *testing.T) Load {
			return Load{Err: fmt.Errorf("load program: %w", unix.EPERM)}
		}, protocol.ReasonPermission, "EPERM"},
		{"6.1 tcx before 6.6", func(t *testing.T) Load {
			return Load{AttachErr: fmt.Errorf("tcx: %w", ebpf.ErrNotSupported), Attach: "tcx on lo"}
		}, protocol.ReasonAttachUnsupported, "tcx on lo"},
		{"5.10 arm64 fentry: no trampoline", func(t *testing.T) Load {
			return Load{AttachErr: fmt.Errorf("create raw tracepoint: %w", ebpf.ErrNotSupported), Attach: "fentry vfs_read"}
		}, protocol.ReasonAttachUnsupported, "fentry vfs_read"},
		{"kprobe on a missing function", func(t *testing.T) Load {
			return Load{AttachErr: fmt.Errorf("kprobe: %w", os.ErrNotExist), Attach: "kprobe no_such_function"}
		}, protocol.ReasonAttachTargetMissing, "no_such_function"},
		{"socket filter attach: ENOMEM", func(t *testing.T) Load {
			return Load{AttachErr: fmt.Errorf("attach: %w", unix.ENOMEM), Attach: "socket filter on a UDP socket"}
		}, protocol.ReasonAttachFailed, "(ENOMEM)"},
		{"loaded and attached", func(t *testing.T) Load { return Load{Program: spec(t, "probes.o", "bounded_loop")} }, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Classify(tt.load(t))
			if v.Reason != tt.reason || !strings.Contains(v.Detail, tt.detail) {
				t.Errorf("got %s %q, want %s with %q", v.Reason, v.Detail, tt.reason, tt.detail)
			}
			if v.Reason != "" {
				if _, ok := v.Reason.Info(); !ok {
					t.Errorf("%s is not in protocol.Reasons", v.Reason)
				}
			}
		})
	}
}

func TestLastLine(t *testing.T) {
	log := []string{"0: (79) r0 = *(u64 *)(r10 +8)", "invalid read from stack R10 off=8 size=8", "verification time 5 usec", "stack depth 0",
		"processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0", ""}
	if got := LastLine(log); got != "invalid read from stack R10 off=8 size=8" {
		t.Errorf("got %q", got)
	}
	if got := LastLine(nil); got != "" {
		t.Errorf("empty log: %q", got)
	}
}

func TestHelperName(t *testing.T) {
	for fn, want := range map[int]string{181: "bpf_loop", 14: "bpf_get_current_pid_tgid", 113: "bpf_probe_read_kernel"} {
		if d, ok := helperLine(fmt.Sprintf("invalid func unknown#%d", fn)); !ok || !strings.HasPrefix(d, want) {
			t.Errorf("helper #%d: %q, want %s", fn, d, want)
		}
	}
	if d, _ := helperLine("invalid func unknown#181"); d != "bpf_loop (since 5.17, commit e6f2dd0f8067)" {
		t.Errorf("bpf_loop: %q", d)
	}
}

func TestDecisiveLine(t *testing.T) {
	core := []string{
		"0: R1=ctx() R10=fp0",
		"; instruction poisoned by CO-RE: *(u64 *)(r1 +112) @ kprobe_args.c:36",
		"0: (85) call unknown#195896080",
		"invalid func unknown#195896080",
		"processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
	}
	if line, isCore := DecisiveLine(core); !isCore || line != "instruction poisoned by CO-RE: *(u64 *)(r1 +112) @ kprobe_args.c:36" {
		t.Errorf("CO-RE log: %q %v", line, isCore)
	}
	plain := []string{"0: (79) r0 = *(u64 *)(r10 +8)", "invalid read from stack R10 off=8 size=8", "processed 1 insns"}
	if line, isCore := DecisiveLine(plain); isCore || line != "invalid read from stack R10 off=8 size=8" {
		t.Errorf("plain log: %q %v", line, isCore)
	}
	if !TooComplex("BPF program is too large. Processed 1000001 insn") || !TooComplex("The sequence of 8193 jumps is too complex.") || TooComplex("invalid read") {
		t.Error("tooComplex")
	}
}
