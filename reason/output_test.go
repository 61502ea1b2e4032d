package reason

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// TestFromOutput reads the output of real programs that failed in a VM
// (testdata/output: Debian's libbpf-tools 0.26 and testdata/loopload, a
// cilium/ebpf v0.22 loader, run by vmrunner exec on the default kernels),
// and lines in the formats libbpf and cilium/ebpf print.
func TestFromOutput(t *testing.T) {
	for _, tc := range []struct {
		name, fixture, output string
		want                  protocol.Reason
		detail                string
	}{
		// libbpf: the fentry target was renamed after 5.15.
		{name: "cachestat on 6.1", fixture: "6.1-x86_64-libbpf-tools-cachestat.txt",
			want: protocol.ReasonAttachTargetMissing, detail: "account_page_dirtied"},
		// libbpf's load log block: tp_btf's argument count on 5.10.
		{name: "biolatency on 5.10", fixture: "5.10-x86_64-libbpf-tools-biolatency.txt",
			want: protocol.ReasonVerifierRejected, detail: "invalid bpf_context access off=8 size=8"},
		// cilium/ebpf's VerifierError: a callback (BPF-to-BPF) on 5.10.
		{name: "cilium loopload on 5.10", fixture: "5.10-x86_64-cilium-loopload.txt",
			want: protocol.ReasonBPFCallsUnsupported, detail: "number of funcs in func_info doesn't match number of subprogs"},
		{name: "cilium pseudo-func on 5.10", fixture: "5.10-x86_64-cilium-pseudofunc.txt",
			want: protocol.ReasonVerifierRejected, detail: "unrecognized bpf_ld_imm64 insn"},

		// The formats of libbpf's and cilium/ebpf's messages.
		{name: "libbpf CO-RE", output: "libbpf: prog 'handle': relo #3: <byte_off> [7] struct task_struct.__state (0:1 @ offset 16)\n" +
			"libbpf: prog 'handle': -- BEGIN PROG LOAD LOG --\n0: (b7) r1 = 0\n1: <invalid CO-RE relocation>\n" +
			"failed to resolve CO-RE relocation <byte_off> [7] struct task_struct.__state (0:1 @ offset 16)\n" +
			"processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n-- END PROG LOAD LOG --\n",
			want: protocol.ReasonCORERelocation, detail: "failed to resolve CO-RE relocation <byte_off> [7] struct task_struct.__state (0:1 @ offset 16)"},
		{name: "libbpf no BTF", output: "libbpf: failed to find valid kernel BTF\nlibbpf: Error loading vmlinux BTF: -3\n",
			want: protocol.ReasonMissingBTF, detail: "libbpf: failed to find valid kernel BTF"},
		{name: "libbpf kfunc", output: "libbpf: extern (func ksym) 'bpf_rcu_read_lock': not found in kernel or module BTFs\n",
			want: protocol.ReasonKfuncMissing, detail: "bpf_rcu_read_lock"},
		{name: "libbpf fentry attach", output: "libbpf: prog 'vfs_read_entry': failed to attach: Unknown error 524\n",
			want: protocol.ReasonAttachUnsupported, detail: "libbpf: prog 'vfs_read_entry': failed to attach: Unknown error 524"},
		{name: "libbpf kprobe target", output: "libbpf: prog 'k': failed to create kprobe 'no_such_fn+0x0' perf event: No such file or directory\n",
			want: protocol.ReasonAttachTargetMissing, detail: "no_such_fn+0x0"},
		{name: "libbpf memlock", output: "libbpf: Error in bpf_object__probe_loading():Operation not permitted(1). Couldn't load trivial BPF program. " +
			"Make sure your kernel supports BPF (CONFIG_BPF_SYSCALL=y) and/or that RLIMIT_MEMLOCK is set to big enough value.\n",
			want: protocol.ReasonMemlock},
		{name: "libbpf helper in log", output: "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: (85) call bpf_loop#181\ninvalid func unknown#181\n" +
			"processed 1 insns\n-- END PROG LOAD LOG --\n",
			want: protocol.ReasonHelperUnsupported, detail: "bpf_loop (since 5.17, commit e6f2dd0f8067)"},
		{name: "cilium CO-RE", output: "    x_test.go:12: load: program p: load program: bad CO-RE relocation: invalid func unknown#195896080 (12 line(s) omitted)\n",
			want: protocol.ReasonCORERelocation},
		{name: "cilium too complex", output: "load program: argument list too long: BPF program is too large. Processed 1000001 insn (4001 line(s) omitted)\n",
			want: protocol.ReasonTooComplex, detail: "BPF program is too large. Processed 1000001 insn"},
		{name: "cilium fentry target", output: "load: program p: find target for fentry account_page_dirtied: not found\n",
			want: protocol.ReasonAttachTargetMissing, detail: "fentry account_page_dirtied"},
		{name: "cilium ring buffer", output: "create map events: ring buffer not supported (requires >= v5.8)\n",
			want: protocol.ReasonMapTypeUnsupported, detail: "ring buffer (since v5.8)"},
		{name: "cilium memlock", output: "load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)\n",
			want: protocol.ReasonMemlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := []byte(tc.output)
			if tc.fixture != "" {
				var err error
				if out, err = os.ReadFile(filepath.Join("testdata", "output", tc.fixture)); err != nil {
					t.Fatal(err)
				}
			}
			v, ok := FromOutput(out)
			if !ok || v.Reason != tc.want || (tc.detail != "" && v.Detail != tc.detail) {
				t.Errorf("FromOutput = %+v, %v; want %s (%q)", v, ok, tc.want, tc.detail)
			}
		})
	}
}

// TestFromOutputNone: a program that failed for its own reasons has no
// reason read from its output, however its lines look.
func TestFromOutputNone(t *testing.T) {
	for _, out := range []string{
		"",
		"--- FAIL: TestSum (0.00s)\n    sum_test.go:9: want 3, got 4\nFAIL\n",
		"usage: cachestat [-T] [interval] [count]\n",
		"open /etc/app.conf: no such file or directory\n",
		"processed 12 insns (limit 1000000)\n",
	} {
		if v, ok := FromOutput([]byte(out)); ok {
			t.Errorf("FromOutput(%q) = %+v, want none", out, v)
		}
	}
}
