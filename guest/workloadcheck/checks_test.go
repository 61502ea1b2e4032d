package workloadcheck

import (
	"slices"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// TestWorkloadCheckTable checks that the workload runner implements exactly
// the checks protocol's table gives it (guest.Registry refuses the others).
func TestWorkloadCheckTable(t *testing.T) {
	var want []string
	for _, def := range protocol.Checks() {
		if def.Runner == protocol.RunnerWorkload {
			want = append(want, def.Name)
		}
	}
	if got := Checks.Names(); !slices.Equal(got, want) {
		t.Errorf("workload runner checks %v, table %v", got, want)
	}
}
