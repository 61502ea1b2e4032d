package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Version is the protocol version spoken by this build on both sides.
const Version = 1

// PortName is the name of the virtio-serial port (virtserialport name=...).
const PortName = "vmrunner.0"

// MaxMessageSize bounds one framed message, newline included.
const MaxMessageSize = 1 << 20

// Type names a message.
type Type string

// Message types, in the order they normally appear.
const (
	TypeReady      Type = "ready"
	TypePlan       Type = "plan"
	TypeCheckStart Type = "check-start"
	TypeLog        Type = "log"
	TypeResult     Type = "result"
	TypeArtifact   Type = "artifact"
	TypeDone       Type = "done"
	TypeBye        Type = "bye"
)

// Status is the outcome of one check.
type Status string

// Check statuses. Pass, Fail, Error and Skip come from the guest; the host
// adds the infrastructure statuses (see vmrunner.Status*).
const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusError Status = "error"
	StatusSkip  Status = "skip"
)

// ValidArtifactName reports whether name is safe to use as a relative path
// on the host: 2 to 6 segments of [A-Za-z0-9._-], none of them "." or "..",
// at most 256 bytes. At least two segments keep artifacts out of the files the
// host writes itself (console.log, qemu.log).
func ValidArtifactName(name string) bool {
	if len(name) == 0 || len(name) > 256 {
		return false
	}
	segs := strings.Split(name, "/")
	if len(segs) < 2 || len(segs) > 6 {
		return false
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Valid reports whether s is one of the statuses a guest may send.
func (s Status) Valid() bool {
	switch s {
	case StatusPass, StatusFail, StatusError, StatusSkip:
		return true
	}
	return false
}

// Message is one framed message. Exactly the payload field matching Type is set.
type Message struct {
	V          int         `json:"v"`
	Type       Type        `json:"type"`
	Ready      *Ready      `json:"ready,omitempty"`
	Plan       *Plan       `json:"plan,omitempty"`
	CheckStart *CheckStart `json:"check_start,omitempty"`
	Log        *Log        `json:"log,omitempty"`
	Result     *Result     `json:"result,omitempty"`
	Artifact   *Artifact   `json:"artifact,omitempty"`
	Done       *Done       `json:"done,omitempty"`
}

// Ready is the guest's first message.
type Ready struct {
	Agent         string `json:"agent"`          // agent build version
	KernelRelease string `json:"kernel_release"` // uname -r
	Machine       string `json:"machine"`        // uname -m
	UptimeMS      int64  `json:"uptime_ms"`      // guest uptime when the port opened
}

// Plan tells the guest which checks to run.
type Plan struct {
	Checks []CheckSpec `json:"checks"`
}

// CheckSpec is one check to run. Params is the check's own configuration.
type CheckSpec struct {
	Name    string          `json:"name"`
	Params  json.RawMessage `json:"params,omitempty"`
	Timeout Duration        `json:"timeout"`
}

// CheckStart announces that a check began.
type CheckStart struct {
	Check string `json:"check"`
}

// Log is a line of guest-side logging.
type Log struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Result is the outcome of one check.
type Result struct {
	Check      string          `json:"check"`
	Status     Status          `json:"status"`
	Message    string          `json:"message,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	Details    json.RawMessage `json:"details,omitempty"`
}

// Artifact is a file a check produced (a verifier log, metrics). The host
// stores it under the VM's directory at Name, which ValidArtifactName checks.
type Artifact struct {
	Check     string `json:"check"` // the result it belongs to, e.g. verifier/probes/loop
	Name      string `json:"name"`  // relative path: dir/file, e.g. verifier/probes/loop.log
	Data      string `json:"data"`  // UTF-8 text
	Truncated bool   `json:"truncated,omitempty"`
}

// Done ends the guest's report.
type Done struct {
	Results int `json:"results"`
}

// Duration is a time.Duration that encodes as a Go duration string.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// BTFParams configures the "btf" check.
type BTFParams struct {
	// Require lists BTF type names that must be present in vmlinux BTF.
	Require []string `json:"require" yaml:"require"`
}

// DefaultBTFRequire is the set of types required when none are given.
var DefaultBTFRequire = []string{"task_struct", "sk_buff", "sock"}

// BTFDetails is what the "btf" check reports in Result.Details.
type BTFDetails struct {
	VmlinuxPresent bool              `json:"vmlinux_present"`
	Types          int               `json:"types"`
	Found          []string          `json:"found"`
	Missing        []string          `json:"missing"`
	ModuleBTF      int               `json:"module_btf"`
	Config         map[string]string `json:"config"`
	ConfigSource   string            `json:"config_source,omitempty"`
}

// FeaturesParams configures the "features" check. Empty lists mean
// defaults: every program and map type the guest knows, and the default
// helpers on the default program types.
type FeaturesParams struct {
	Programs []string `json:"programs,omitempty"`
	Maps     []string `json:"maps,omitempty"`
	Helpers  []string `json:"helpers,omitempty"`
}

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

// VerifierParams configures the "verifier" check as the guest sees it.
type VerifierParams struct {
	// Objects are guest paths of BPF ELF objects.
	Objects []string `json:"objects"`
	// Programs, when set, are the only programs loaded.
	Programs []string `json:"programs,omitempty"`
	// Expect maps a program name to what is expected of it.
	Expect map[string]VerifierExpect `json:"expect,omitempty"`
	// LogAlways asks for the instruction-level log even when a program
	// loads (vmrunner repro).
	LogAlways bool `json:"log_always,omitempty"`
}

// VerifierExpect says on which kernels a program should be rejected.
type VerifierExpect struct {
	// Fail lists version ranges (bpfprobe.ParseRange).
	Fail []string `json:"fail,omitempty"`
}

// VerifierDetails is what one "verifier/<object>/<program>" result reports.
type VerifierDetails struct {
	Object               string `json:"object"`
	Program              string `json:"program"`
	Type                 string `json:"type,omitempty"`
	Loaded               bool   `json:"loaded"`
	ExpectedFail         bool   `json:"expected_fail"`
	ExpectRange          string `json:"expect_range,omitempty"`
	Kernel               string `json:"kernel,omitempty"`
	InsnsProcessed       int    `json:"insns_processed,omitempty"`
	VerificationTimeNS   int64  `json:"verification_time_ns,omitempty"`
	States               int    `json:"states,omitempty"`
	PeakStates           int    `json:"peak_states,omitempty"`
	LogLevel             uint32 `json:"log_level"`
	LogBytes             int    `json:"log_bytes"`
	LogTruncated         bool   `json:"log_truncated,omitempty"`
	Instructions         int    `json:"instructions,omitempty"`
	VerifiedInstructions uint32 `json:"verified_instructions,omitempty"`
}
