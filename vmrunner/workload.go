package vmrunner

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/protocol"
)

func init() { checkParams["workload"] = reflect.TypeFor[workloadParams]() }

// workloadParams is the "workload" check as written in matrix.yaml:
//
//	workload:
//	  scenario: multi-protocol          # the only one
//	  duration: 10s                     # each phase (default 10s)
//	  rates: {http: 200, grpc: 100, sql: 50, redis: 50}   # per second (default: the RFD's)
//	  error_rate: 0.1                   # share of HTTP 5xx (default 0.1)
//	  latency: 2ms                      # added by /api/slow (default 2ms)
//	  profile: standard                 # standard | constrained | long-running
//	  overhead: true                    # run a baseline phase first (default true)
//	  sample_every: 1m                  # long-running: RSS and fd sampling
//
// It is sent to the guest as protocol.WorkloadParams.
type workloadParams struct {
	Scenario    string         `yaml:"scenario"`
	Duration    yamlDuration   `yaml:"duration"`
	Rates       map[string]int `yaml:"rates"`
	ErrorRate   *float64       `yaml:"error_rate"`
	Latency     yamlDuration   `yaml:"latency"`
	Profile     string         `yaml:"profile"`
	Overhead    *bool          `yaml:"overhead"`
	SampleEvery yamlDuration   `yaml:"sample_every"`
	// Classifier is test-only: "broken-status" selects a deliberately
	// wrong HTTP status parser, which the validation must catch.
	Classifier string `yaml:"classifier"`
	// ProbeRead is test-only: "bpf_probe_read" forces the build for
	// kernels before 5.5.
	ProbeRead string `yaml:"probe_read"`
}

// MarshalJSON sends what the guest reads, with the defaults filled in.
func (w workloadParams) MarshalJSON() ([]byte, error) {
	p := protocol.WorkloadParams{
		Latency: protocol.Duration(w.Latency), Profile: w.Profile, Overhead: true,
		SampleEvery: protocol.Duration(w.SampleEvery), Classifier: w.Classifier, ProbeRead: w.ProbeRead,
	}
	p.Scenario, p.Duration, p.Rates, p.ErrorRate = scenarioDefaults(w.Scenario, w.Duration, w.Rates, w.ErrorRate)
	if p.Profile == "" {
		p.Profile = "standard"
	}
	if w.Overhead != nil {
		p.Overhead = *w.Overhead
	}
	return json.Marshal(p)
}

// resolve checks the values the YAML types do not.
func (w *workloadParams) resolve(env *paramsEnv, n *yaml.Node) {
	oneOf := func(key, v string, allowed []string) {
		if v != "" && !slices.Contains(allowed, v) {
			env.errorf(yamlValue(n, key), "%s: %q: expected one of %s", key, v, strings.Join(slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return s == "" }), ", "))
		}
	}
	oneOf("scenario", w.Scenario, protocol.WorkloadScenarios)
	oneOf("profile", w.Profile, protocol.WorkloadProfiles)
	oneOf("classifier", w.Classifier, protocol.WorkloadClassifiers)
	oneOf("probe_read", w.ProbeRead, protocol.WorkloadProbeReads)
	rates := yamlValue(n, "rates")
	at := func(name string) *yaml.Node {
		for i := 0; i+1 < len(rates.Content); i += 2 {
			if rates.Content[i].Value == name {
				return rates.Content[i]
			}
		}
		return rates
	}
	for _, name := range slices.Sorted(maps.Keys(w.Rates)) {
		if !slices.Contains(protocol.WorkloadProtocols, name) {
			env.errorf(at(name), "rates: unknown protocol %q%s; expected %s", name,
				didYouMean(name, protocol.WorkloadProtocols), strings.Join(protocol.WorkloadProtocols, ", "))
		} else if r := w.Rates[name]; r < 0 || r > 1_000_000 {
			env.errorf(at(name), "rates: %s: %d: expected operations per second from 0 to 1000000", name, r)
		}
	}
	if w.ErrorRate != nil && (*w.ErrorRate < 0 || *w.ErrorRate > 1) {
		env.errorf(yamlValue(n, "error_rate"), "error_rate: %v: expected a share from 0 to 1", *w.ErrorRate)
	}
	if w.SampleEvery != 0 && w.Profile != "long-running" {
		env.errorf(yamlValue(n, "sample_every"), "sample_every: only for profile: long-running")
	}
}

// scenarioDefaults fills in what the workload and beyla checks share: the
// scenario, the duration of a phase, the rates and the HTTP 5xx share.
func scenarioDefaults(scenario string, d yamlDuration, rates map[string]int, errorRate *float64) (string, protocol.Duration, map[string]int, float64) {
	if scenario == "" {
		scenario = "multi-protocol"
	}
	dur := protocol.Duration(d)
	if dur == 0 {
		dur = protocol.Duration(10 * time.Second)
	}
	if rates == nil {
		rates = maps.Clone(protocol.DefaultWorkloadRates)
	}
	share := 0.1
	if errorRate != nil {
		share = *errorRate
	}
	return scenario, dur, rates, share
}
