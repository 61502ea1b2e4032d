package results

import (
	"encoding/json"

	"github.com/vmrunner/vmrunner/protocol"
)

// VMCheck is the check name of a record about a VM itself rather than one of
// its checks: the VM did not end with done and a clean power-off (its
// ErrorKind says how it ended), or an unfinished run has no record of it.
// No check of a matrix can have this name.
const VMCheck = "vm"

// Record is one kernel × arch × check outcome, as written to results.json.
type Record struct {
	Kernel        string          `json:"kernel"`
	Arch          string          `json:"arch"`
	KernelRelease string          `json:"kernel_release,omitempty"`
	Source        *Source         `json:"source,omitempty"`
	Accel         string          `json:"accel,omitempty"`
	Channel       string          `json:"channel,omitempty"` // the guest's channel: virtio-serial, or console when its kernel has no virtio console
	Check         string          `json:"check"`
	Status        protocol.Status `json:"status"`
	ErrorKind     ErrorKind       `json:"error_kind,omitempty"`
	// Reason says why a record that is not a pass is not, in one stable
	// code (protocol.Reason, docs/reasons.md); ReasonDetail names what it
	// is about. Store.Add gives every record that is not a pass one.
	Reason       protocol.Reason `json:"reason,omitempty"`
	ReasonDetail string          `json:"reason_detail,omitempty"`
	// ReasonFrom is ReasonFromOutput when the reason was read from the
	// output of the user's own program (exec, the test check): a hint,
	// not the loader's error values. Hint is then what to do about it.
	ReasonFrom string          `json:"reason_from,omitempty"`
	Hint       string          `json:"hint,omitempty"`
	Message    string          `json:"message,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	Details    json.RawMessage `json:"details,omitempty"`
	Splats     []Splat         `json:"splats,omitempty"`
	Console    string          `json:"console,omitempty"`   // path relative to the run directory
	Artifacts  []string        `json:"artifacts,omitempty"` // files the check produced, relative to the run directory
	BootMS     int64           `json:"boot_ms,omitempty"`   // QEMU start to the agent's ready (or to its snapshot restored)
	// Boot says how the VM reached ready: "cold" (booted) or "snapshot"
	// (restored from one, SnapshotAgeMS old). ClockStepMS is how far the
	// guest moved its clock to the host's before its checks.
	Boot          string `json:"boot,omitempty"`
	SnapshotAgeMS int64  `json:"snapshot_age_ms,omitempty"`
	ClockStepMS   int64  `json:"clock_step_ms,omitempty"`
	Attempts      int    `json:"attempts,omitempty"` // boots it took (more than 1 after an infrastructure retry)
	Flaky         bool   `json:"flaky,omitempty"`    // passed the infrastructure only after a retry
}

// ReasonFromOutput is Record.ReasonFrom for a reason read from a program's
// own output: libbpf's or cilium/ebpf's error lines (reason.FromOutput).
const ReasonFromOutput = "program-output"

// Source identifies the kernel a record ran on.
type Source struct {
	Type    string `json:"type"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Suite   string `json:"suite,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Splat is a kernel problem report seen on the console.
type Splat struct {
	Kind string `json:"kind"` // panic, oops, bug, warning, rcu-stall, hung-task
	Line string `json:"line"`
}
