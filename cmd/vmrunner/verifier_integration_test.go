package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// probeRecord is a results.json record of the features or verifier check.
type probeRecord struct {
	Kernel    string   `json:"kernel"`
	Arch      string   `json:"arch"`
	Check     string   `json:"check"`
	Status    string   `json:"status"`
	Message   string   `json:"message"`
	Artifacts []string `json:"artifacts"`
	Details   struct {
		// verifier
		Loaded         bool `json:"loaded"`
		ExpectedFail   bool `json:"expected_fail"`
		InsnsProcessed int  `json:"insns_processed"`
		LogLevel       int  `json:"log_level"`
		// features
		Missing []string `json:"missing"`
		Results []struct {
			Feature, Program, Status, Verdict string
		} `json:"results"`
	} `json:"details"`
}

// TestDefaultMatrixProbes runs the features and verifier checks of the
// shipped matrix.yaml on its six VMs and checks the verdict of every probe
// program of testdata/bpf on every kernel.
func TestDefaultMatrixProbes(t *testing.T) {
	integration(t)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--check", "features", "--check", "verifier", "--out", out)
	if res.code != 0 {
		t.Errorf("exit code %d, want 0", res.code)
	}
	var r struct {
		Results []probeRecord `json:"results"`
	}
	dir := readLatest(t, out, &r)
	recs := map[string]probeRecord{}
	for _, rec := range r.Results {
		recs[rec.Kernel+"/"+rec.Arch+"/"+rec.Check] = rec
	}

	// loaded[program] lists the kernels that accept it.
	all := []string{"5.10", "6.1", "6.12"}
	loaded := map[string][]string{
		"bounded_loop":       all,
		"core_task_pid":      all,
		"large_program":      all,
		"ringbuf_output":     all,
		"uses_bpf_loop":      {"6.1", "6.12"},
		"rejected_stack_oob": nil,
	}
	for _, kernel := range all {
		for _, arch := range []string{"x86_64", "arm64"} {
			for prog, on := range loaded {
				key := fmt.Sprintf("%s/%s/verifier/probes/%s", kernel, arch, prog)
				rec, ok := recs[key]
				if !ok {
					t.Errorf("%s: no result", key)
					continue
				}
				want := slices.Contains(on, kernel)
				if rec.Status != "pass" || rec.Details.Loaded != want {
					t.Errorf("%s: %s loaded=%v (%s), want pass with loaded=%v", key, rec.Status, rec.Details.Loaded, rec.Message, want)
				}
				if len(rec.Artifacts) != 1 || !strings.HasSuffix(rec.Artifacts[0], "/verifier/probes/"+prog+".log") {
					t.Errorf("%s: artifacts %v", key, rec.Artifacts)
				}
				if prog == "large_program" && rec.Details.InsnsProcessed <= 4096 {
					t.Errorf("%s: %d instructions processed, want more than 4096", key, rec.Details.InsnsProcessed)
				}
			}

			// The rejected program's log holds the rejecting instruction and
			// the verifier's reason.
			rec := recs[kernel+"/"+arch+"/verifier/probes/rejected_stack_oob"]
			if len(rec.Artifacts) == 1 {
				log, err := os.ReadFile(filepath.Join(dir, rec.Artifacts[0]))
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"r0 = *(u64 *)(r10 +8)", "invalid read from stack"} {
					if !strings.Contains(string(log), want) {
						t.Errorf("%s: log does not contain %q:\n%s", rec.Artifacts[0], want, log)
					}
				}
				if rec.Details.LogLevel != 7 {
					t.Errorf("%s: log level %d, want 7 (instruction, branch, stats)", rec.Check, rec.Details.LogLevel)
				}
			}

			feat, ok := recs[kernel+"/"+arch+"/features"]
			if !ok || feat.Status != "pass" || len(feat.Details.Missing) > 0 {
				t.Errorf("%s/%s features: %s (%s), missing %v", kernel, arch, feat.Status, feat.Message, feat.Details.Missing)
			}
			status := map[string]string{}
			for _, f := range feat.Details.Results {
				key := f.Feature
				if f.Program != "" {
					key += "@" + f.Program
				}
				status[key] = f.Status
			}
			wantLoop := "supported"
			if kernel == "5.10" {
				wantLoop = "unsupported"
			}
			for key, want := range map[string]string{
				"map/ringbuf": "supported", "map/hash": "supported", "program/kprobe": "supported",
				"helper/ringbuf_output@kprobe": "supported", "helper/loop@kprobe": wantLoop,
				"helper/loop@xdp": wantLoop,
			} {
				if status[key] != want {
					t.Errorf("%s/%s features: %s is %q, want %s", kernel, arch, key, status[key], want)
				}
			}
		}
	}
}
