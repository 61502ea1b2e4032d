package protocol

// SelftestParams configures the "selftest" check, which makes the guest fail
// in a chosen way so that vmrunner's own failure handling can be tested on
// real kernels, or reports what a restored guest must not get wrong (its
// clock, its random numbers). It is documented, but not meant for user
// matrices.
type SelftestParams struct {
	// Action is one of SelftestActions; it has no default.
	Action string `json:"action" yaml:"action"`
}

// SelftestActions are the failures the selftest check can cause.
var SelftestActions = []string{
	"pass",          // report pass
	"panic",         // crash the kernel through /proc/sysrq-trigger
	"hang",          // block forever, ignoring the check's deadline
	"exit-agent",    // the agent (PID 1) exits
	"flood-channel", // write an endless line on the control port
	"garbage",       // write a line that is not a protocol message
	"clock",         // pass, with the guest's wall clock in details (unix_ns)
	"random",        // pass, with 32 bytes read from /dev/urandom in details (urandom, hex)
	"console-noise", // pass, and print to the console as fast as possible until the VM ends
}

// SelftestDetails are the details of the clock and random actions.
type SelftestDetails struct {
	UnixNS  int64  `json:"unix_ns,omitempty"`
	URandom string `json:"urandom,omitempty"`
}

// SelftestCheck is the "selftest" check.
var SelftestCheck = declare("selftest", RunnerAgent, SelftestParams{})

// Validate implements paramsValidator.
func (p SelftestParams) Validate() []ParamProblem {
	return oneOf("action", p.Action, SelftestActions)
}
