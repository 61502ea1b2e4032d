package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loaderRecord is a results.json record of the verifier check, program or
// object.
type loaderRecord struct {
	Kernel    string   `json:"kernel"`
	Arch      string   `json:"arch"`
	Check     string   `json:"check"`
	Status    string   `json:"status"`
	ErrorKind string   `json:"error_kind"`
	Message   string   `json:"message"`
	Artifacts []string `json:"artifacts"`
	Details   struct {
		Loaded         bool   `json:"loaded"`
		InsnsProcessed int    `json:"insns_processed"`
		LogLevel       int    `json:"log_level"`
		LogBytes       int    `json:"log_bytes"`
		TooComplex     bool   `json:"too_complex"`
		CORE           bool   `json:"core"`
		Attached       bool   `json:"attached"`
		Step           string `json:"step"`
		// the object's record
		Pinned  []string `json:"pinned"`
		Modules []string `json:"modules"`
	} `json:"details"`
}

// verdict is what one record must say: its status, error kind and a part of
// its message.
type verdict struct {
	status, kind, msg string
}

var (
	loaded      = verdict{"pass", "", "loaded: "}
	objectPass  = verdict{"pass", "", " programs loaded, "}
	cannotCreat = verdict{"error", "load", "create map flows: map create: invalid argument (MaxEntries may be incorrectly set to zero)"}
)

// attached is a program that loaded and attached to hook.
func attached(hook string) verdict { return verdict{"pass", "", "; attached: " + hook} }

// cannotAttach is a program that loaded but whose hook the kernel refuses.
func cannotAttach(hook string) verdict {
	return verdict{"fail", "", "loaded but cannot attach: " + hook + ": "}
}

// loaderVerdicts is every record of matrices/verifier-loader.yaml on one
// kernel and arch, as measured: each row of issue 11.
func loaderVerdicts(kernel, arch string) map[string]verdict {
	arm64 := arch == "arm64"
	before66, before64 := kernel != "6.12", kernel != "6.12"
	v := map[string]verdict{
		// Maps pinned by name get a directory of their own on bpffs.
		"pinned/count_packets": attached("socket filter"),
		"pinned/read_config":   attached("socket filter"),
		"pinned":               {"pass", "", "2 of 2 programs loaded, 2 maps, 0 variables, 2 pinned by name"},
		// Globals in maps no program uses are still created, with
		// their variables.
		"globals/no_globals": attached("socket filter"),
		"globals/uses_data":  attached("socket filter"),
		"globals":            {"pass", "", "2 of 2 programs loaded, 3 maps, 3 variables"},
		// A constant decides the verdict.
		"constants/guarded_read":        {"fail", "", "rejected: invalid read from stack R10 off=8 size=8"},
		"constants/sized_constants":     loaded,
		"constants":                     {"pass", "", "1 of 2 programs loaded"},
		"constants_set/guarded_read":    attached("socket filter"),
		"constants_set/sized_constants": loaded,
		"constants_set":                 {"pass", "", "2 of 2 programs loaded"},
		// A map its loader sizes: an error of the input without it.
		"sizes/track_flows":     {"error", "load", "load: " + cannotCreat.msg + " (its loader sets the size at run time"},
		"sizes/no_maps":         loaded,
		"sizes":                 cannotCreat,
		"sizes_set/track_flows": loaded,
		"sizes_set/no_maps":     loaded,
		"sizes_set":             objectPass,
		// Programs on a BPF program: without their target, an error of
		// the input, never a verifier rejection.
		"freplace/replace_decide":          {"error", "load", "load: attach target: a freplace program needs the program it replaces"},
		"freplace/trace_decide":            {"error", "load", "fentry decide not supported (no kernel function decide here; if it is a function of a BPF program"},
		"freplace":                         {"pass", "", "0 of 2 programs loaded"},
		"freplace_targeted/replace_decide": attached("freplace decide"),
		"freplace_targeted/trace_decide":   attached("fentry decide"),
		"freplace_targeted":                {"pass", "", "2 of 2 programs loaded"},
		// A kfunc of nf_conntrack.ko: only with the module, and not on 5.10.
		"conntrack/ct_lookup":        {"error", "load", `kfunc "bpf_xdp_ct_lookup": not supported (a kfunc a module provides needs the module`},
		"conntrack":                  {"pass", "", "0 of 1 programs loaded"},
		"conntrack_module/ct_lookup": attached("xdp on lo"),
		"conntrack_module":           {"pass", "", "1 of 1 programs loaded"},
		// One program per hook.
		"attach/kprobe_vfs_read":    attached("kprobe vfs_read"),
		"attach/kretprobe_vfs_read": attached("kretprobe vfs_read"),
		"attach/tracepoint_getpid":  attached("tracepoint syscalls/sys_enter_getpid"),
		"attach/raw_tp_sys_enter":   attached("raw_tp sys_enter"),
		"attach/fentry_vfs_read":    attached("fentry vfs_read"),
		"attach/fexit_vfs_read":     attached("fexit vfs_read"),
		"attach/xdp_pass":           attached("xdp on lo"),
		"attach/tc_pass":            attached("tc ingress on lo"),
		"attach/tcx_pass":           attached("tcx on lo"),
		"attach/cgroup_egress":      attached("cgroup_skb on the root cgroup"),
		"attach/socket_filter":      attached("socket filter on a UDP socket"),
		"attach":                    {"pass", "", "11 of 11 programs loaded"},
		// Uprobes: attached only given the executable.
		"uprobe/uprobe_main":           {"pass", "", "; not attached: a uprobe needs the executable it probes"},
		"uprobe/uretprobe_main":        {"pass", "", "; not attached: a uretprobe needs the executable it probes"},
		"uprobe":                       {"pass", "", "2 of 2 programs loaded"},
		"uprobe_binary/uprobe_main":    attached("uprobe main.main in uprobe-target-" + arch),
		"uprobe_binary/uretprobe_main": attached("uretprobe main.main in uprobe-target-" + arch),
		"uprobe_binary":                {"pass", "", "2 of 2 programs loaded"},
		// struct_ops: its programs load everywhere, its map (BPF_F_LINK)
		// from 6.4.
		"struct_ops/vmr_ssthresh":   {"pass", "", "attached with its struct_ops map"},
		"struct_ops/vmr_cong_avoid": loaded,
		"struct_ops/vmr_undo_cwnd":  loaded,
		"struct_ops":                {"pass", "", "3 of 3 programs loaded, 1 maps"},
		// No programs, still a record.
		"maps_only": {"pass", "", "no programs; 2 maps, 1 variables created"},
		// bpf2go's per-arch builds: each VM loads its own.
		"kprobe_args/read_count": attached("kprobe vfs_read"),
		"kprobe_args":            {"pass", "", "1 of 1 programs loaded"},
		"wrong_arch/read_count":  attached("kprobe vfs_read"),
		"wrong_arch":             {"pass", "", "1 of 1 programs loaded"},
		// The one-million-instruction limit, without a detailed log.
		"complexity/too_complex": {"fail", "", "rejected: too complex (1000001 insns processed): BPF program is too large. Processed 1000001 insn"},
		"complexity":             {"pass", "", "0 of 1 programs loaded"},
	}
	if kernel == "5.10" {
		v["conntrack_module/ct_lookup"] = verdict{"pass", "", `not supported, as expected (<6.0): fixing up kfuncs: kfunc "bpf_xdp_ct_lookup"`}
		v["conntrack_module"] = verdict{"pass", "", "0 of 1 programs loaded"}
	}
	if before66 {
		v["attach/tcx_pass"] = verdict{"pass", "", "loaded, cannot attach, as expected (<6.6): tcx on lo: tcx not supported (requires >= v6.6)"}
	}
	if before64 {
		v["struct_ops"] = verdict{"pass", "", "failed as expected (<6.4): create struct_ops map vmr_cc: map create: invalid argument"}
	}
	if arm64 {
		v["wrong_arch/read_count"] = verdict{"fail", "", "rejected: instruction poisoned by CO-RE"}
		v["wrong_arch"] = verdict{"pass", "", "0 of 1 programs loaded"}
	}
	if arm64 && kernel != "6.12" {
		// arm64 trampolines attach to kernel functions from 6.4 or so.
		v["attach/fentry_vfs_read"] = cannotAttach("fentry vfs_read")
		v["attach/fexit_vfs_read"] = cannotAttach("fexit vfs_read")
	}
	if arm64 && kernel == "5.10" {
		// and not even to BPF programs on 5.10.
		v["freplace_targeted/replace_decide"] = cannotAttach("freplace decide")
		v["freplace_targeted/trace_decide"] = cannotAttach("fentry decide")
	}
	return v
}

// TestLoaderMatrix runs matrices/verifier-loader.yaml on its six VMs and
// checks every record against what each kernel and arch really does: the
// rows of issue 11, with the objects loaded as their own loaders would.
// One run (about a minute warm here under TCG): the tcx and arm64 fentry
// rows need all three kernels on both arches.
func TestLoaderMatrix(t *testing.T) {
	integration(t)
	// The executable uprobe.o attaches to, as `make build` builds it.
	for arch, goarch := range map[string]string{"x86_64": "amd64", "arm64": "arm64"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", "../../bin/uprobe-target-"+arch, "../../testdata/uprobe-target")
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build uprobe-target: %v\n%s", err, b)
		}
	}
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", "../../matrices/verifier-loader.yaml", "--out", out)
	if res.code != 1 {
		t.Errorf("exit code %d, want 1: inputs wrong on purpose are the input's problem (error_kind load), not infrastructure", res.code)
	}
	var r struct {
		Results []loaderRecord `json:"results"`
	}
	dir := readLatest(t, out, &r)
	got := map[string]loaderRecord{}
	for _, rec := range r.Results {
		if rec.Status == "error" && rec.ErrorKind != "load" {
			t.Errorf("%s/%s %s: error of kind %q: %s", rec.Kernel, rec.Arch, rec.Check, rec.ErrorKind, rec.Message)
		}
		got[fmt.Sprintf("%s/%s/%s", rec.Kernel, rec.Arch, rec.Check)] = rec
	}
	for _, kernel := range []string{"5.10", "6.1", "6.12"} {
		for _, arch := range []string{"x86_64", "arm64"} {
			want := loaderVerdicts(kernel, arch)
			for name, w := range want {
				key := fmt.Sprintf("%s/%s/verifier/%s", kernel, arch, name)
				rec, ok := got[key]
				switch {
				case !ok:
					t.Errorf("%s: no record", key)
				case rec.Status != w.status || rec.ErrorKind != w.kind || !strings.Contains(rec.Message, w.msg):
					t.Errorf("%s: %s/%s %q, want %s/%s containing %q", key, rec.Status, rec.ErrorKind, rec.Message, w.status, w.kind, w.msg)
				}
			}
			var extra []string
			for key := range got {
				if name, ok := strings.CutPrefix(key, kernel+"/"+arch+"/verifier/"); ok {
					if _, wanted := want[name]; !wanted {
						extra = append(extra, name)
					}
				}
			}
			if len(extra) > 0 {
				t.Errorf("%s/%s: records nobody expects: %v", kernel, arch, extra)
			}

			prefix := kernel + "/" + arch + "/verifier/"
			if p := got[prefix+"pinned"].Details.Pinned; !slices.Equal(p, []string{"pinned_config", "pinned_counts"}) {
				t.Errorf("%s/%s pinned maps: %v", kernel, arch, p)
			}
			// The complexity limit: the statistics-level log only, its end
			// kept, small, and the VM alive for the objects after it.
			c := got[prefix+"complexity/too_complex"]
			if !c.Details.TooComplex || c.Details.LogLevel != 4 || c.Details.LogBytes > 64<<10 || len(c.Artifacts) != 1 {
				t.Errorf("%s/%s too_complex: %+v", kernel, arch, c.Details)
			} else if log, err := os.ReadFile(filepath.Join(dir, c.Artifacts[0])); err != nil || !strings.Contains(string(log), "BPF program is too large. Processed 1000001 insn") {
				t.Errorf("%s/%s too_complex log: %v\n%s", kernel, arch, err, log)
			}
			if arch == "arm64" {
				w := got[prefix+"wrong_arch/read_count"]
				if !w.Details.CORE || len(w.Artifacts) != 1 {
					t.Errorf("%s/%s wrong_arch: %+v", kernel, arch, w.Details)
				} else if log, _ := os.ReadFile(filepath.Join(dir, w.Artifacts[0])); !strings.Contains(string(log), "invalid func unknown#195896080") {
					t.Errorf("%s/%s wrong_arch log has no poisoned call:\n%s", kernel, arch, log)
				}
			}
			if s := got[prefix+"sizes/track_flows"].Details.Step; s != "create map flows" {
				t.Errorf("%s/%s sizes/track_flows step %q", kernel, arch, s)
			}
		}
	}
}
