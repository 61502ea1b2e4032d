package guest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// TestAgentCheckTable checks that the agent has every check of protocol's
// table: its own (protocol.RunnerAgent) implemented here, the others relayed
// to the workload runner. The workload runner's side is
// workloadcheck.TestWorkloadCheckTable; the host's, matrix.TestHostCheckTable.
func TestAgentCheckTable(t *testing.T) {
	if got, want := agentChecks.Names(), protocol.CheckNames(); !slices.Equal(got, want) {
		t.Errorf("agent checks %v, table %v", got, want)
	}
	for _, def := range protocol.Checks() {
		check, ok := agentChecks.Lookup(def.Name)
		if !ok {
			continue // reported above
		}
		if def.Runner != protocol.RunnerWorkload {
			continue
		}
		// A relay: without the runner in the initramfs it says so, which
		// no check of the agent's own would.
		_, err := check(context.Background(), json.RawMessage(`{}`))
		if err == nil || !strings.Contains(err.Error(), protocol.WorkloadRunnerPath+" is not in the initramfs") {
			t.Errorf("%s: not relayed to the workload runner: %v", def.Name, err)
		}
	}
}

func TestRegistryRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(r *Registry)
		want string
	}{
		{"other runner", func(r *Registry) { r.Add(protocol.WorkloadCheck.Def(), nil) }, `check "workload" runs in the workload program, not the agent program`},
		{"not in the table", func(r *Registry) {
			d := *protocol.BTFCheck.Def()
			r.Add(&d, nil)
		}, `check "btf" is not in protocol's table`},
		{"twice", func(r *Registry) {
			r.Add(protocol.BTFCheck.Def(), nil)
			r.Add(protocol.BTFCheck.Def(), nil)
		}, `check "btf" registered twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(p.(string), tc.want) {
					t.Errorf("panic %v, want %q", p, tc.want)
				}
			}()
			tc.add(NewRegistry(protocol.RunnerAgent))
		})
	}
}
