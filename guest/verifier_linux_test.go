package guest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// hostLoader returns an environment for loading objects into the kernel
// running the test, with a bpffs of its own, or skips the test where that
// cannot be done (not root, BPF disabled, no bpffs).
func hostLoader(t testing.TB) verifierEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	_ = removeMemlock() // 5.11+ charges memory cgroups, not RLIMIT_MEMLOCK
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Skipf("this kernel does not load BPF programs here: %v", err)
	}
	p.Close()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Skipf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	release, machine := uname()
	return verifierEnv{release: release, arch: archName(machine), bpffs: dir}
}

func loaderObject(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", "bpf", "loader", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runVerifier runs the check and returns its results by name.
func runVerifier(t *testing.T, env verifierEnv, p protocol.VerifierParams) (map[string]protocol.Result, map[string]string) {
	t.Helper()
	params, _ := json.Marshal(p)
	o, err := verifyObjects(context.Background(), env, params)
	if err != nil {
		t.Fatal(err)
	}
	res, logs := map[string]protocol.Result{}, map[string]string{}
	for _, r := range o.Sub {
		res[r.Check] = r
	}
	for _, a := range o.Artifacts {
		logs[a.Check] = a.Data
	}
	return res, logs
}

// want is what one result must say.
type want struct {
	status protocol.Status
	kind   string
	msg    string
}

func checkResults(t *testing.T, got map[string]protocol.Result, wants map[string]want) {
	t.Helper()
	for name, w := range wants {
		r, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: no result (have %v)", name, keys(got))
		case r.Status != w.status || r.ErrorKind != w.kind || !strings.Contains(r.Message, w.msg):
			t.Errorf("%s: %s/%s %q, want %s/%s containing %q", name, r.Status, r.ErrorKind, r.Message, w.status, w.kind, w.msg)
		}
	}
	if len(got) != len(wants) {
		t.Errorf("%d results, want %d: %v", len(got), len(wants), keys(got))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestLoaderOnHostKernel loads the objects of testdata/bpf/loader into the
// kernel running the test, as the guest does: each row of what the
// verifier check must get right, without a VM.
func TestLoaderOnHostKernel(t *testing.T) {
	env := hostLoader(t)
	obj := func(name string) protocol.VerifierObject { return protocol.VerifierObject{Path: loaderObject(t, name)} }
	pass := want{status: protocol.StatusPass}

	t.Run("pinned maps", func(t *testing.T) {
		got, _ := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("pinned.o")}})
		checkResults(t, got, map[string]want{
			"verifier/pinned/count_packets": pass, "verifier/pinned/read_config": pass,
			"verifier/pinned": {protocol.StatusPass, "", "2 of 2 programs loaded, 2 maps, 0 variables, 2 pinned by name"},
		})
		var d protocol.VerifierObjectDetails
		_ = json.Unmarshal(got["verifier/pinned"].Details, &d)
		if strings.Join(d.Pinned, ",") != "pinned_config,pinned_counts" {
			t.Errorf("pinned: %v", d.Pinned)
		}
		left, _ := filepath.Glob(filepath.Join(env.bpffs, "vmrunner-*"))
		if len(left) != 0 {
			t.Errorf("pin directories left on bpffs: %v", left)
		}
	})

	t.Run("unused globals", func(t *testing.T) {
		got, _ := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("globals.o")}})
		checkResults(t, got, map[string]want{
			"verifier/globals/no_globals": pass, "verifier/globals/uses_data": pass,
			"verifier/globals": {protocol.StatusPass, "", "2 of 2 programs loaded, 3 maps, 3 variables"},
		})
	})

	t.Run("constants", func(t *testing.T) {
		set := obj("constants.o")
		set.Name = "constants_set"
		set.Constants = map[string]string{"skip_bad_read": "true", "port": "8080", "offset": "-4", "limit": "0x10000"}
		got, _ := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("constants.o"), set}})
		checkResults(t, got, map[string]want{
			"verifier/constants/guarded_read":     {protocol.StatusFail, "", "rejected: invalid read from stack"},
			"verifier/constants/sized_constants":  pass,
			"verifier/constants":                  pass,
			"verifier/constants_set/guarded_read": pass, "verifier/constants_set/sized_constants": pass,
			"verifier/constants_set": pass,
		})
	})

	t.Run("max_entries 0", func(t *testing.T) {
		sized := obj("sizes.o")
		sized.Name = "sizes_set"
		sized.Maps = map[string]protocol.VerifierMap{"flows": {MaxEntries: 1024}}
		got, _ := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("sizes.o"), sized}})
		checkResults(t, got, map[string]want{
			"verifier/sizes/track_flows":     {protocol.StatusError, protocol.ErrorKindLoad, "load: create map flows: "},
			"verifier/sizes/no_maps":         pass,
			"verifier/sizes":                 {protocol.StatusError, protocol.ErrorKindLoad, "create map flows: "},
			"verifier/sizes_set/track_flows": pass, "verifier/sizes_set/no_maps": pass,
			"verifier/sizes_set": pass,
		})
		if m := got["verifier/sizes/track_flows"].Message; !strings.Contains(m, "maps: {NAME: {max_entries: N}}") {
			t.Errorf("no hint: %s", m)
		}
	})

	t.Run("freplace and fentry on a BPF program", func(t *testing.T) {
		targeted := obj("freplace.o")
		targeted.Name = "freplace_targeted"
		target := protocol.VerifierTarget{Object: loaderObject(t, "freplace_target.o"), Program: "xdp_target"}
		targeted.AttachTo = map[string]protocol.VerifierTarget{"replace_decide": target, "trace_decide": target}
		got, _ := runVerifier(t, env, protocol.VerifierParams{Attach: true, Objects: []protocol.VerifierObject{obj("freplace.o"), targeted}})
		if m := got["verifier/freplace_targeted/trace_decide"].Message; strings.Contains(m, "operation not permitted") {
			// Some sandboxes (seen: a Firecracker guest) refuse every
			// tracing program; the integration tests run this in VMs.
			t.Skipf("this kernel refuses tracing programs: %s", m)
		}
		checkResults(t, got, map[string]want{
			"verifier/freplace/replace_decide":          {protocol.StatusError, protocol.ErrorKindLoad, "load: attach target: a freplace program needs the program it replaces"},
			"verifier/freplace/trace_decide":            {protocol.StatusError, protocol.ErrorKindLoad, "attach_to"},
			"verifier/freplace":                         pass,
			"verifier/freplace_targeted/replace_decide": {protocol.StatusPass, "", "attached: freplace decide"},
			"verifier/freplace_targeted/trace_decide":   {protocol.StatusPass, "", "attached: fentry decide"},
			"verifier/freplace_targeted":                pass,
		})
	})

	t.Run("no programs", func(t *testing.T) {
		got, _ := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("maps_only.o")}})
		checkResults(t, got, map[string]want{
			"verifier/maps_only": {protocol.StatusPass, "", "no programs; 2 maps, 1 variables created"},
		})
	})

	t.Run("struct_ops", func(t *testing.T) {
		got, _ := runVerifier(t, env, protocol.VerifierParams{Attach: true, Objects: []protocol.VerifierObject{obj("struct_ops.o")}})
		checkResults(t, got, map[string]want{
			"verifier/struct_ops/vmr_ssthresh":   {protocol.StatusPass, "", "attached with its struct_ops map"},
			"verifier/struct_ops/vmr_cong_avoid": pass, "verifier/struct_ops/vmr_undo_cwnd": pass,
			"verifier/struct_ops": {protocol.StatusPass, "", "3 of 3 programs loaded, 1 maps"},
		})
	})

	t.Run("per-arch builds", func(t *testing.T) {
		other := map[string]string{"x86_64": "arm64", "arm64": "x86"}[env.arch]
		own := map[string]string{"x86_64": "x86", "arm64": "arm64"}[env.arch]
		if other == "" {
			t.Skipf("no bpf2go build for %s", env.arch)
		}
		wrong := obj("kprobe_args_" + other + "_bpfel.o")
		wrong.Name = "wrong_arch"
		got, logs := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{
			{Path: loaderObject(t, "kprobe_args_"+own+"_bpfel.o"), Arch: env.arch},
			{Path: loaderObject(t, "kprobe_args_"+other+"_bpfel.o"), Arch: "elsewhere"},
			wrong,
		}})
		checkResults(t, got, map[string]want{
			"verifier/kprobe_args/read_count": pass, "verifier/kprobe_args": pass,
			"verifier/wrong_arch/read_count": {protocol.StatusFail, "", "rejected: instruction poisoned by CO-RE"},
			"verifier/wrong_arch":            pass,
		})
		if !strings.Contains(logs["verifier/wrong_arch/read_count"], "invalid func unknown#195896080") {
			t.Errorf("log: %s", logs["verifier/wrong_arch/read_count"])
		}
	})

	t.Run("complexity limit", func(t *testing.T) {
		got, logs := runVerifier(t, env, protocol.VerifierParams{Objects: []protocol.VerifierObject{obj("complexity.o")}})
		checkResults(t, got, map[string]want{
			"verifier/complexity/too_complex": {protocol.StatusFail, "", "rejected: too complex (1000001 insns processed): BPF program is too large"},
			"verifier/complexity":             {protocol.StatusPass, "", "0 of 1 programs loaded"},
		})
		var d protocol.VerifierDetails
		_ = json.Unmarshal(got["verifier/complexity/too_complex"].Details, &d)
		if d.LogLevel != uint32(ebpf.LogLevelStats) || !d.TooComplex || d.LogBytes > 64<<10 {
			t.Errorf("details: %+v", d)
		}
		if log := logs["verifier/complexity/too_complex"]; !strings.Contains(log, "BPF program is too large") || !strings.Contains(log, "too many for the instruction-level log") {
			t.Errorf("log: %s", log)
		}
	})
}

// TestAttachingProbesAgree: the program types probed with the agent's
// kernel BTF give what cilium/ebpf's own probes give on this kernel.
func TestAttachingProbesAgree(t *testing.T) {
	hostLoader(t)
	for pt := range attachingProbes {
		ours := kernelProber{}.programType(pt)
		theirs := features.HaveProgramType(pt)
		if (ours == nil) != (theirs == nil) || errors.Is(ours, ebpf.ErrNotSupported) != errors.Is(theirs, ebpf.ErrNotSupported) {
			t.Errorf("%s: probed with the shared BTF: %v; cilium/ebpf's probe: %v", pt, ours, theirs)
		}
	}
}
