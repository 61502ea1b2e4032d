package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/vmrunner/vmrunner/protocol"
)

// Check runs one kind of check with its JSON parameters (possibly empty).
//
// It returns an Outcome with status pass, fail or skip, or an error when
// something unexpected broke; the error is reported as status error, along
// with any Details already set. It should give up when ctx is done.
type Check func(ctx context.Context, params json.RawMessage) (Outcome, error)

// Outcome is what a check found.
type Outcome struct {
	Status  protocol.Status
	Message string
	// Details is encoded to JSON into protocol.Result.Details.
	Details any
	// Sub are results named "<check>/<...>", sent after the check's
	// artifacts. A check that sets Sub and leaves Status empty reports
	// only them.
	Sub []protocol.Result
	// Artifacts are files for the host to save (protocol.Artifact).
	Artifacts []protocol.Artifact
}

// Registry holds the checks one guest program implements, by the name used
// in the plan. Entries come from protocol's table: Add refuses a check that
// is not there or that another program runs.
type Registry struct {
	runner protocol.Runner
	checks map[string]Check
}

// NewRegistry returns an empty registry for the program runner.
func NewRegistry(runner protocol.Runner) *Registry {
	return &Registry{runner: runner, checks: map[string]Check{}}
}

// Add registers impl as the implementation of def. It panics when def is not
// in protocol's table, is run by another program, or has an implementation
// already: a mistake of the build, which the table tests catch.
func (r *Registry) Add(def *protocol.CheckDef, impl Check) {
	if d, ok := protocol.LookupCheck(def.Name); !ok || d != def {
		panic(fmt.Sprintf("check %q is not in protocol's table", def.Name))
	}
	if def.Runner != r.runner {
		panic(fmt.Sprintf("check %q runs in the %s program, not the %s program", def.Name, def.Runner, r.runner))
	}
	r.set(def.Name, impl)
}

func (r *Registry) set(name string, impl Check) {
	if _, dup := r.checks[name]; dup {
		panic(fmt.Sprintf("check %q registered twice", name))
	}
	r.checks[name] = impl
}

// Lookup returns the check named name.
func (r *Registry) Lookup(name string) (Check, bool) {
	c, ok := r.checks[name]
	return c, ok
}

// Names returns the names registered, sorted.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(r.checks))
}

// agentChecks are the checks of the agent: its own (btf.go, features.go,
// verifier.go, selftest.go) and relays to the workload runner
// (workload_runner.go).
var agentChecks = NewRegistry(protocol.RunnerAgent)
