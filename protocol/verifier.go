package protocol

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

// VerifierCheck is the "verifier" check: load every program of the objects
// and report one result per program with the verifier's log.
var VerifierCheck = declare("verifier", RunnerAgent, VerifierParams{})

// Validate implements paramsValidator.
func (p VerifierParams) Validate() []ParamProblem {
	if len(p.Objects) == 0 {
		return []ParamProblem{{Key: []string{"objects"}, Msg: "missing objects: expected a list of BPF object paths"}}
	}
	return nil
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
