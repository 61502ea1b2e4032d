package protocol

import "time"

// BeylaParams configures the "beyla" check as the guest sees it.
type BeylaParams struct {
	// Binary is the guest path of the Beyla (or OBI) executable; a
	// directory holds one per arch, named x86_64 and arm64. It has no
	// default.
	Binary   string `json:"binary"`
	Scenario string `json:"scenario"`
	// Duration, Rates and ErrorRate drive the load, as for "workload".
	Duration  Duration       `json:"duration"`
	Rates     map[string]int `json:"rates"`
	ErrorRate float64        `json:"error_rate"`
	// Warmup is how long to wait after Beyla's Prometheus endpoint
	// answers before the load starts (attaching takes time).
	Warmup Duration `json:"warmup"`
	// Settle is how long to wait after the load for the last spans.
	Settle Duration `json:"settle"`
}

// BeylaCheck is the "beyla" check: a user-supplied Beyla binary observes
// the workload check's scenario, with the same load and defaults.
var BeylaCheck = declare("beyla", RunnerWorkload, BeylaParams{
	Scenario:  WorkloadCheck.Defaults().Scenario,
	Duration:  WorkloadCheck.Defaults().Duration,
	Rates:     WorkloadCheck.Defaults().Rates,
	ErrorRate: WorkloadCheck.Defaults().ErrorRate,
	Settle:    Duration(2 * time.Second),
})

// Validate implements paramsValidator.
func (p BeylaParams) Validate() []ParamProblem {
	probs := []ParamProblem{}
	if p.Binary == "" {
		probs = append(probs, ParamProblem{Key: []string{"binary"}, Msg: "missing binary: expected the path of a Beyla or OBI executable"})
	}
	probs = append(probs, validateLoad(p.Scenario, p.Duration, p.Rates, p.ErrorRate)...)
	probs = append(probs, nonNegative("warmup", p.Warmup)...)
	return append(probs, nonNegative("settle", p.Settle)...)
}

// BeylaDetails is what the "beyla" check reports in Result.Details.
type BeylaDetails struct {
	Binary    string  `json:"binary"`
	StartupMS float64 `json:"startup_ms"` // until the metrics endpoint answered
	// TraceLines and MetricFamilies count what was parsed.
	TraceLines     int `json:"trace_lines"`
	MetricFamilies int `json:"metric_families"`
	// Protocols compare, per protocol, the counts expected from what was
	// sent with those of the Prometheus metrics and of the trace lines.
	Protocols  map[string]BeylaProtocol `json:"protocols"`
	Mismatches []string                 `json:"mismatches"`
	// Stderr is the end of Beyla's standard error, when it failed.
	Stderr string `json:"stderr,omitempty"`
}

// BeylaProtocol is one protocol's expected and observed counts.
type BeylaProtocol struct {
	AchievedRate float64          `json:"achieved_rate"`
	Expected     map[string]int64 `json:"expected"`
	Metrics      map[string]int64 `json:"metrics"`
	Traces       map[string]int64 `json:"traces"`
	Match        bool             `json:"match"`
}
