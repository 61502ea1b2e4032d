package vmrunner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func TestShellQEMUArgs(t *testing.T) {
	for _, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		k := &kernels.Kernel{Image: "/c/Image", Uncompressed: "/c/vmlinux"}
		cfg := qemuConfig{Arch: arch, Kernel: k, Accel: AccelTCG, Profile: ProfileFast, MemoryMiB: 512, CPUs: 1,
			QMP: "/s/qmp", Control: "/s/ctl", Console: "/s/con"}
		normal := strings.Join(cfg.args(), " ")
		cfg.Shell = true
		shell := strings.Join(cfg.args(), " ")
		for _, want := range []string{"-chardev stdio,id=console,signal=off", "-serial chardev:console", "-chardev null,id=control", " " + ShellCmdlineFlag, "-qmp unix:/s/qmp"} {
			if !strings.Contains(shell, want) {
				t.Errorf("%s shell args lack %q: %s", arch, want, shell)
			}
		}
		for _, not := range []string{"/s/con", "/s/ctl"} {
			if strings.Contains(shell, not) {
				t.Errorf("%s shell args still use %s: %s", arch, not, shell)
			}
		}
		if strings.Contains(normal, ShellCmdlineFlag) || strings.Contains(normal, "stdio") {
			t.Errorf("%s: normal args changed: %s", arch, normal)
		}
	}
}

func TestReproExitCode(t *testing.T) {
	loaded, _ := json.Marshal(protocol.VerifierDetails{Loaded: true})
	rejected, _ := json.Marshal(protocol.VerifierDetails{Loaded: false})
	pass := results.Record{Status: protocol.StatusPass, Details: loaded}
	fail := results.Record{Status: protocol.StatusFail, Details: rejected}
	// A program expected to be rejected passes the check, but repro says
	// what the verifier did.
	expectedReject := results.Record{Status: protocol.StatusPass, Details: rejected}
	badObject := results.Record{Status: protocol.StatusError, ErrorKind: results.KindCheck}
	boot := results.Record{Status: protocol.StatusError, ErrorKind: results.KindBootTimeout}
	for _, tc := range []struct {
		recs        []results.Record
		interrupted bool
		want        int
	}{
		{[]results.Record{pass}, false, results.ExitOK},
		{[]results.Record{pass, fail}, false, results.ExitFail},
		{[]results.Record{expectedReject}, false, results.ExitFail},
		{[]results.Record{fail, badObject}, false, results.ExitBadInput},
		{[]results.Record{badObject, boot}, false, results.ExitInfra},
		{nil, false, results.ExitInfra},
		{[]results.Record{pass}, true, results.ExitInterrupted},
	} {
		if got := reproExitCode(tc.recs, tc.interrupted); got != tc.want {
			t.Errorf("reproExitCode(%+v, %v) = %d, want %d", tc.recs, tc.interrupted, got, tc.want)
		}
	}
}

func TestWriteFeatureGrid(t *testing.T) {
	details := func(features ...protocol.FeatureResult) json.RawMessage {
		b, _ := json.Marshal(protocol.FeaturesDetails{Results: features})
		return b
	}
	recs := []results.Record{
		{Kernel: "6.1", Arch: "x86_64", Check: "features", Details: details(
			protocol.FeatureResult{Feature: "map/ringbuf", Since: "5.8", Status: "supported", Verdict: "ok"},
			protocol.FeatureResult{Feature: "helper/loop", Program: "kprobe", Since: "5.17", Status: "unsupported", Verdict: "missing"},
		)},
		{Kernel: "5.10", Arch: "x86_64", Check: "features", Details: details(
			protocol.FeatureResult{Feature: "map/ringbuf", Since: "5.8", Status: "supported", Verdict: "ok"},
			protocol.FeatureResult{Feature: "helper/loop", Program: "kprobe", Since: "5.17", Status: "supported", Verdict: "backport"},
			protocol.FeatureResult{Feature: "program/lirc_mode2", Since: "4.18", Status: "unsupported", Verdict: "not-built"},
		)},
		{Kernel: "6.1", Arch: "x86_64", Check: "btf"},
	}
	var b bytes.Buffer
	missing, err := WriteFeatureGrid(&b, recs)
	if err != nil || missing != 1 {
		t.Fatalf("missing %d, err %v", missing, err)
	}
	lines := strings.Split(b.String(), "\n")
	for i, want := range [][]string{
		{"FEATURE", "SINCE", "5.10/x86_64", "6.1/x86_64"},
		{"map/ringbuf", "5.8", "yes", "yes"},
		{"helper/loop@kprobe", "5.17", "yes+", "NO!"},
		{"program/lirc_mode2", "4.18", "off", "-"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d: %q, want %q", i, lines[i], want)
		}
	}
	if _, err := WriteFeatureGrid(&b, recs[2:]); err == nil {
		t.Error("no features results: no error")
	}
}
