package main

import (
	"fmt"
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
