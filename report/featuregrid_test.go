package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// The grid reads verdicts as bpfprobe writes them: spelled with bpfprobe's
// constants here, this test fails when the two disagree.
func TestWriteFeatureGrid(t *testing.T) {
	details := func(features ...protocol.FeatureResult) json.RawMessage {
		b, _ := json.Marshal(protocol.FeaturesDetails{Results: features})
		return b
	}
	recs := []results.Record{
		{Kernel: "6.1", Arch: "x86_64", Check: "features", Details: details(
			protocol.FeatureResult{Feature: "map/ringbuf", Since: "5.8", Status: "supported", Verdict: string(bpfprobe.VerdictOK)},
			protocol.FeatureResult{Feature: "helper/loop", Program: "kprobe", Since: "5.17", Status: "unsupported", Verdict: string(bpfprobe.VerdictMissing)},
		)},
		{Kernel: "5.10", Arch: "x86_64", Check: "features", Details: details(
			protocol.FeatureResult{Feature: "map/ringbuf", Since: "5.8", Status: "supported", Verdict: string(bpfprobe.VerdictOK)},
			protocol.FeatureResult{Feature: "helper/loop", Program: "kprobe", Since: "5.17", Status: "supported", Verdict: string(bpfprobe.VerdictBackport)},
			protocol.FeatureResult{Feature: "program/lirc_mode2", Since: "4.18", Status: "unsupported", Verdict: string(bpfprobe.VerdictNotBuilt)},
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
