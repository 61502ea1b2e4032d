package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reasonsWanted is the reason of every record of matrices/reasons.yaml that
// is not a pass on kernel × arch, as those kernels decide: every other
// record must pass without one.
func reasonsWanted(kernel, arch string) map[string]string {
	arm64 := arch == "arm64"
	w := map[string]string{
		"complexity/too_complex":    "TOO_COMPLEX",
		"conntrack/ct_lookup":       "KFUNC_MISSING",
		"freplace/replace_decide":   "ATTACH_TARGET_MISSING",
		"freplace/trace_decide":     "ATTACH_TARGET_MISSING",
		"probes/rejected_stack_oob": "VERIFIER_REJECTED",
		"reasons/stack_limit":       "STACK_LIMIT",
		"sizes":                     "LOADER",
		"sizes/track_flows":         "LOADER",
		"reasons/fentry_renamed":    "ATTACH_TARGET_MISSING", // account_page_dirtied: gone in 5.16
		"reasons/prog_type_new":     "PROG_TYPE_UNSUPPORTED", // netfilter: 6.4
		"reasons/helper_for_type":   "HELPER_UNSUPPORTED",    // a base helper from 6.10
		"attach/tcx_pass":           "ATTACH_UNSUPPORTED",    // tcx: 6.6
		"probes/large_program":      "ATTACH_FAILED",         // ENOMEM attaching it to a socket
		"probes/uses_bpf_loop":      "BPF_CALLS_UNSUPPORTED", // bpf_loop: 5.17
		"reasons":                   "MAP_TYPE_UNSUPPORTED",  // bloom filter: 5.16
		"reasons/map_type_new":      "MAP_TYPE_UNSUPPORTED",
		"wrong_arch/read_count":     "CORE_RELOCATION", // the x86 build on arm64
		"attach/fentry_vfs_read":    "ATTACH_UNSUPPORTED",
		"attach/fexit_vfs_read":     "ATTACH_UNSUPPORTED",
	}
	if kernel == "5.10" {
		delete(w, "reasons/fentry_renamed")
		if arm64 {
			w["reasons/fentry_renamed"] = "ATTACH_UNSUPPORTED" // no fentry on arm64 before 6.0
		}
	} else {
		delete(w, "probes/uses_bpf_loop")
		delete(w, "reasons")
		delete(w, "reasons/map_type_new")
	}
	if kernel == "6.12" {
		for _, k := range []string{"reasons/prog_type_new", "reasons/helper_for_type", "attach/tcx_pass", "probes/large_program"} {
			delete(w, k)
		}
	}
	if !arm64 {
		delete(w, "wrong_arch/read_count")
	}
	if !arm64 || kernel == "6.12" {
		delete(w, "attach/fentry_vfs_read")
		delete(w, "attach/fexit_vfs_read")
	}
	return w
}

// TestReasonsMatrix runs matrices/reasons.yaml, objects of our own built to
// fail for each reason, on the six default VMs and checks every record's
// reason: what each kernel and arch says, classified.
func TestReasonsMatrix(t *testing.T) {
	integration(t)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", "../../matrices/reasons.yaml", "--out", out)
	if res.code != 1 {
		t.Errorf("exit code %d, want 1", res.code)
	}
	var r struct {
		Results []struct {
			Kernel, Arch, Check, Status, Reason string
			Detail                              string `json:"reason_detail"`
		} `json:"results"`
	}
	readLatest(t, out, &r)
	seen := map[string]bool{}
	for _, rec := range r.Results {
		name, ok := strings.CutPrefix(rec.Check, "verifier/")
		if !ok {
			t.Errorf("%s/%s: unexpected record %s", rec.Kernel, rec.Arch, rec.Check)
			continue
		}
		key := fmt.Sprintf("%s/%s %s", rec.Kernel, rec.Arch, name)
		seen[key] = true
		want := reasonsWanted(rec.Kernel, rec.Arch)[name]
		switch {
		case want == "" && (rec.Status != "pass" || rec.Reason != ""):
			t.Errorf("%s: %s %s (%s), want a pass without a reason", key, rec.Status, rec.Reason, rec.Detail)
		case want != "" && (rec.Status == "pass" || rec.Reason != want):
			t.Errorf("%s: %s %s (%s), want %s", key, rec.Status, rec.Reason, rec.Detail, want)
		case want != "" && rec.Detail == "" && rec.Reason != "LOADER":
			t.Errorf("%s: %s without a detail", key, rec.Reason)
		}
	}
	for _, kernel := range []string{"5.10", "6.1", "6.12"} {
		for _, arch := range []string{"x86_64", "arm64"} {
			for name := range reasonsWanted(kernel, arch) {
				if key := fmt.Sprintf("%s/%s %s", kernel, arch, name); !seen[key] {
					t.Errorf("%s: no record", key)
				}
			}
		}
	}
}

// TestVerifierBudget runs one program of testdata/bpf/loader/reasons.o on
// 6.1 twice, the second time made heavier by its loader's constant (its
// loop walks 512 iterations instead of 64), under a complexity budget: the
// heavier one is over it (fail, COMPLEXITY_BUDGET, exit 1), and report
// verifier reports the growth and fails a growth budget.
func TestVerifierBudget(t *testing.T) {
	integration(t)
	// A matrix puts only files of its own directory into a VM.
	dir := t.TempDir()
	obj, err := os.ReadFile("../../testdata/bpf/loader/reasons.o")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reasons.o"), obj, 0o644); err != nil {
		t.Fatal(err)
	}
	runs := map[int]string{}
	for _, iterations := range []int{64, 512} {
		matrix := filepath.Join(dir, fmt.Sprintf("m%d.yaml", iterations))
		err := os.WriteFile(matrix, []byte(fmt.Sprintf(`kernels:
  - name: "6.1"
    arch: [x86_64]
    source: {debian: {suite: bookworm}}
checks:
  - verifier:
      objects: [{path: reasons.o, constants: {iterations: %d}}]
      programs: [walk_loop]
      budget: {insns_percent_of_limit: 0.2}
`, iterations)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("out%d", iterations))
		res := vmrunnerCLI(t, "run", matrix, "--out", out)
		var r struct {
			Results []struct{ Check, Status, Reason, Message string } `json:"results"`
		}
		runs[iterations] = readLatest(t, out, &r)
		var walk string
		for _, rec := range r.Results {
			if rec.Check == "verifier/reasons/walk_loop" {
				walk = rec.Status + " " + rec.Reason + ": " + rec.Message
			}
		}
		wantCode, want := 0, "pass : loaded: "
		if iterations == 512 {
			wantCode, want = 1, "fail COMPLEXITY_BUDGET: over the complexity budget: "
		}
		if res.code != wantCode || !strings.HasPrefix(walk, want) {
			t.Errorf("%d iterations: exit %d, walk_loop %q; want exit %d and %q", iterations, res.code, walk, wantCode, want)
		}
	}
	res := vmrunnerCLI(t, "report", "verifier", runs[512], runs[64], "--growth-budget", "20%")
	if res.code != 1 {
		t.Errorf("report verifier --growth-budget: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	var row string
	for _, l := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(l, "reasons/walk_loop") {
			row = strings.Join(strings.Fields(l), " ")
		}
	}
	if !strings.HasPrefix(row, "reasons/walk_loop 6.1/x86_64 pass fail COMPLEXITY_BUDGET ") || !strings.HasSuffix(row, " OVER") {
		t.Errorf("walk_loop's row %q: want pass → fail COMPLEXITY_BUDGET and OVER\n%s", row, res.stdout)
	}
}
