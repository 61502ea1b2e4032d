package protocol

// FeaturesParams configures the "features" check. Empty lists mean
// defaults: every program and map type the guest knows, and the default
// helpers on the default program types.
type FeaturesParams struct {
	Programs []string `json:"programs,omitempty"`
	Maps     []string `json:"maps,omitempty"`
	Helpers  []string `json:"helpers,omitempty"`
}

// FeaturesCheck is the "features" check: probe program types, map types
// and helpers, and compare each outcome with the release that added the
// feature. Names are checked against bpfprobe's table, on the host where
// they are written and again in the guest.
var FeaturesCheck = declare("features", RunnerAgent, FeaturesParams{})

// FeatureResult is one probe of the "features" check.
type FeatureResult struct {
	// Feature is "program/kprobe", "map/ringbuf" or "helper/loop".
	Feature string `json:"feature"`
	// Program is the program type a helper was probed with.
	Program string `json:"program,omitempty"`
	// Status is "supported", "unsupported" or "error".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Since is the upstream release that added the feature.
	Since string `json:"since"`
	// Verdict compares Status with Since (bpfprobe.Verdict).
	Verdict string `json:"verdict"`
}

// FeaturesDetails is what the "features" check reports in Result.Details.
type FeaturesDetails struct {
	Kernel      string          `json:"kernel"` // upstream version parsed from uname -r
	Supported   int             `json:"supported"`
	Unsupported int             `json:"unsupported"`
	Errors      int             `json:"errors"`
	Missing     []string        `json:"missing"`   // unsupported at or past Since
	Backports   []string        `json:"backports"` // supported before Since
	Results     []FeatureResult `json:"results"`
}
