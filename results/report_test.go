package results

import (
	"slices"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestMissing(t *testing.T) {
	plan := []Target{{"6.1", "x86_64"}, {"6.1", "arm64"}, {"6.12", "x86_64"}}
	recs := []Record{
		{Kernel: "6.1", Arch: "x86_64", Check: "btf", Status: protocol.StatusPass},
		{Kernel: "6.1", Arch: "x86_64", Check: "features", Status: protocol.StatusPass},
	}
	tests := []struct {
		name     string
		run      RunInfo
		missing  []Target
		complete bool
	}{
		{"finished", RunInfo{Finished: true, Targets: plan}, nil, true},
		{"killed", RunInfo{Targets: plan}, []Target{{"6.1", "arm64"}, {"6.12", "x86_64"}}, false},
		{"killed, plan unknown", RunInfo{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Report{Run: tt.run, Results: recs}
			if rep.Incomplete() == tt.complete {
				t.Errorf("Incomplete() = %v", rep.Incomplete())
			}
			if got := rep.Missing(); !slices.Equal(got, tt.missing) {
				t.Errorf("Missing() = %v, want %v", got, tt.missing)
			}
			notRun := rep.NotRun()
			if len(notRun) != len(tt.missing) {
				t.Fatalf("NotRun() = %+v", notRun)
			}
			for i, r := range notRun {
				if TargetOf(r) != tt.missing[i] || r.Check != VMCheck || r.Status != protocol.StatusError || r.ErrorKind != KindIncomplete || r.Message == "" {
					t.Errorf("NotRun()[%d] = %+v", i, r)
				}
			}
			// A VM that did not run is an infrastructure problem, never a pass.
			if len(notRun) > 0 && ExitCode(append(recs, notRun...)) != ExitInfra {
				t.Errorf("ExitCode with NotRun records = %d, want %d", ExitCode(append(recs, notRun...)), ExitInfra)
			}
		})
	}
}
