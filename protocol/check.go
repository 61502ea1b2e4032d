package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Runner is the guest program that runs a check.
type Runner string

// The guest programs.
const (
	// RunnerAgent is the agent itself, PID 1 (package guest).
	RunnerAgent Runner = "agent"
	// RunnerWorkload is cmd/vmrunner-workload (package guest/workloadcheck),
	// which the host packs at WorkloadRunnerPath only when a plan has one of
	// its checks: its protocol clients would make every agent several times
	// bigger.
	RunnerWorkload Runner = "workload"
)

// Runners lists the guest programs.
var Runners = []Runner{RunnerAgent, RunnerWorkload}

// CheckDef is one check of the table that the host and the guest both
// register from: its name, the guest program that runs it, and the type and
// defaults of its parameters. Each check declares itself in its own file of
// this package; Checks lists them.
type CheckDef struct {
	// Name is the check's name in matrix.yaml, in the plan and in results.
	Name string
	// Runner is the guest program that runs it.
	Runner Runner
	// Params is the type of its parameters, a struct: CheckSpec.Params is
	// its JSON encoding, and its json and yaml keys are the same.
	Params reflect.Type

	defaults []byte // the defaults' JSON encoding, an object
	decode   func(raw json.RawMessage) (any, error)
}

// Defaults returns a fresh copy of the default parameters, as a value of
// type Params.
func (d *CheckDef) Defaults() any {
	v, err := d.decode(nil)
	if err != nil {
		panic(fmt.Sprintf("check %s: decode its own defaults: %v", d.Name, err))
	}
	return v
}

// Decode decodes raw over the defaults, as Check.Decode does, into a value
// of type Params.
func (d *CheckDef) Decode(raw json.RawMessage) (any, error) { return d.decode(raw) }

// Validate decodes raw over the defaults, as the guest will, and validates
// the result: what the host does for every check before any VM boots. Its
// error is a *ParamsError when the parameters decode but are not valid.
func (d *CheckDef) Validate(raw json.RawMessage) error {
	v, err := d.decode(raw)
	if err != nil {
		return err
	}
	return validate(d.Name, v)
}

// checks is the table, by name.
var checks = map[string]*CheckDef{}

// Checks returns the table, sorted by name.
func Checks() []*CheckDef {
	out := make([]*CheckDef, 0, len(checks))
	for _, d := range checks {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *CheckDef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupCheck returns the check named name.
func LookupCheck(name string) (*CheckDef, bool) {
	d, ok := checks[name]
	return d, ok
}

// CheckNames returns the names of the checks, sorted.
func CheckNames() []string {
	var names []string
	for _, d := range Checks() {
		names = append(names, d.Name)
	}
	return names
}

// Check is the typed handle of one check of the table, for the code that
// implements it.
type Check[P any] struct {
	def *CheckDef
}

// Def returns the check's entry in the table.
func (c Check[P]) Def() *CheckDef { return c.def }

// Name returns the check's name.
func (c Check[P]) Name() string { return c.def.Name }

// Defaults returns a fresh copy of the default parameters.
func (c Check[P]) Defaults() P { return c.def.Defaults().(P) }

// Decode decodes raw over the defaults: a key present in raw replaces the
// default's value whole (a map is not merged), an absent one keeps the
// default. Unknown keys are an error. Empty or null raw gives the defaults.
func (c Check[P]) Decode(raw json.RawMessage) (P, error) {
	v, err := c.def.decode(raw)
	if err != nil {
		var zero P
		return zero, err
	}
	return v.(P), nil
}

// Params decodes raw over the defaults and validates the result, as a check
// should read its parameters.
func (c Check[P]) Params(raw json.RawMessage) (P, error) {
	p, err := c.Decode(raw)
	if err != nil {
		return p, err
	}
	return p, validate(c.def.Name, p)
}

// validCheckName accepts [a-z][a-z0-9-]*: a name safe in paths and shells.
func validCheckName(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return s != ""
}

// declare adds a check to the table. defaults is data: the parameters a
// check runs with when matrix.yaml leaves them out, the same on both sides.
// It panics on a mistake in the declaration, which TestCheckTable catches.
func declare[P any](name string, runner Runner, defaults P) Check[P] {
	t := reflect.TypeFor[P]()
	switch {
	case !validCheckName(name):
		panic(fmt.Sprintf("check %q: name is not [a-z][a-z0-9-]*", name))
	case checks[name] != nil:
		panic(fmt.Sprintf("check %q declared twice", name))
	case !slices.Contains(Runners, runner):
		panic(fmt.Sprintf("check %q: unknown runner %q", name, runner))
	case t.Kind() != reflect.Struct:
		panic(fmt.Sprintf("check %q: params type %s is not a struct", name, t))
	}
	js, err := json.Marshal(defaults)
	if err != nil {
		panic(fmt.Sprintf("check %q: encode defaults: %v", name, err))
	}
	d := &CheckDef{Name: name, Runner: runner, Params: t, defaults: js}
	d.decode = func(raw json.RawMessage) (any, error) {
		var p P
		if err := decodeOver(js, raw, &p); err != nil {
			return p, fmt.Errorf("%s params: %w", name, err)
		}
		return p, nil
	}
	checks[name] = d
	return Check[P]{d}
}

// decodeOver decodes the object raw over the object defaults into v,
// strictly: top-level keys of raw replace those of defaults.
func decodeOver(defaults, raw json.RawMessage, v any) error {
	merged := defaults
	if len(bytes.TrimSpace(raw)) > 0 && string(bytes.TrimSpace(raw)) != "null" {
		var base, over map[string]json.RawMessage
		if err := json.Unmarshal(defaults, &base); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &over); err != nil {
			return fmt.Errorf("expected a JSON object: %w", err)
		}
		if base == nil {
			base = map[string]json.RawMessage{}
		}
		for k, val := range over {
			base[k] = val
		}
		var err error
		if merged, err = json.Marshal(base); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// ParamProblem is one thing wrong with a check's parameters.
type ParamProblem struct {
	// Key is where: the parameter's key, then keys inside its value
	// (["rates", "htp"]); empty for the parameters as a whole.
	Key []string
	// AtKey places the problem at the last key's name rather than its
	// value: the name is what is wrong (an unknown protocol in rates).
	AtKey bool
	// Msg says what is wrong and what is expected, starting with the key:
	// `error_rate: 1.5: expected a share from 0 to 1`.
	Msg string
}

// ParamsError is the problems Validate found in a check's parameters.
type ParamsError struct {
	Check    string
	Problems []ParamProblem
}

func (e *ParamsError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Msg
	}
	return e.Check + " params: " + strings.Join(msgs, "; ")
}

// paramsValidator is implemented by parameter types with rules beyond their
// JSON types. Validate sees the parameters with the defaults filled in.
type paramsValidator interface {
	Validate() []ParamProblem
}

func validate(check string, p any) error {
	v, ok := p.(paramsValidator)
	if !ok {
		return nil
	}
	if probs := v.Validate(); len(probs) > 0 {
		return &ParamsError{Check: check, Problems: probs}
	}
	return nil
}

// oneOf returns a problem when v, at key, is not one of allowed; "" is
// allowed when allowed has it.
func oneOf(key, v string, allowed []string) []ParamProblem {
	if slices.Contains(allowed, v) {
		return nil
	}
	shown := slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return s == "" })
	if v == "" {
		return []ParamProblem{{Key: []string{key}, Msg: fmt.Sprintf("missing %s: expected one of %s", key, strings.Join(shown, ", "))}}
	}
	return []ParamProblem{{Key: []string{key}, Msg: fmt.Sprintf("%s: %q: expected one of %s", key, v, strings.Join(shown, ", "))}}
}
