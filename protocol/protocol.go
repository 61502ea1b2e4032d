package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
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
	TypeFile       Type = "file"
	TypePrepared   Type = "prepared"
	TypeCheckStart Type = "check-start"
	TypeLog        Type = "log"
	TypeResult     Type = "result"
	TypeArtifact   Type = "artifact"
	TypeOutput     Type = "output"
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

// ErrorKindLoad is an error of the input rather than of the machinery:
// a BPF object that could not be loaded before the verifier ran (a map the
// kernel cannot create, a missing attach target, a constant the object
// does not have).
const ErrorKindLoad = "load"

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
	File       *FileChunk  `json:"file,omitempty"`
	Prepared   *Prepared   `json:"prepared,omitempty"`
	CheckStart *CheckStart `json:"check_start,omitempty"`
	Log        *Log        `json:"log,omitempty"`
	Result     *Result     `json:"result,omitempty"`
	Artifact   *Artifact   `json:"artifact,omitempty"`
	Output     *Output     `json:"output,omitempty"`
	Done       *Done       `json:"done,omitempty"`
}

// Ready is the guest's first message.
type Ready struct {
	Agent         string `json:"agent"`          // agent build version
	KernelRelease string `json:"kernel_release"` // uname -r
	Machine       string `json:"machine"`        // uname -m
	UptimeMS      int64  `json:"uptime_ms"`      // guest uptime when the port opened
	// Notes say what went wrong before the port was open, such as modules
	// that failed to load. They travel in ready, not after it: ready is the
	// last thing the agent writes before it waits for the plan, so that a
	// snapshot taken when the host has it holds nothing half-sent.
	Notes []Log `json:"notes,omitempty"`
}

// Bounds of Ready.Notes.
const (
	MaxNotes     = 64
	MaxNoteBytes = 4096
)

// Plan tells the guest which checks to run.
type Plan struct {
	Checks []CheckSpec `json:"checks"`
	// Host is the host's clock and entropy, and how the VM started.
	Host *HostState `json:"host,omitempty"`
	// Files are sent after the plan, in file messages (see files.go).
	Files []FileSpec `json:"files,omitempty"`
	// Dirs are directories the agent makes under GuestFilesRoot before the
	// files arrive: a shared directory's empty ones (a file's own
	// directories are made for it).
	Dirs []string `json:"dirs,omitempty"`
	// More says that the host may send another plan after done instead of
	// bye (repro --watch): the agent waits for either, without a time
	// limit, and powers off when the host goes away.
	More bool `json:"more,omitempty"`
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

// LogProgress is the level of a log line that says what a long check is
// doing ("verifier: loading tracer/parse_http2, 1m0s so far"); the host
// shows it as the VM's progress.
const LogProgress = "progress"

// Log is a line of guest-side logging.
type Log struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Result is the outcome of one check.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	// ErrorKind says what kind of error an error is, when the guest knows
	// better than "the check could not run": only ErrorKindLoad.
	ErrorKind string `json:"error_kind,omitempty"`
	// Reason says why a result that is not a pass is not (reason.go);
	// ReasonDetail names what it is about (a helper, a function, a CO-RE
	// relocation, the log line the verifier stopped at). A pass may carry
	// them too: the reason a program was rejected as expected.
	Reason       Reason          `json:"reason,omitempty"`
	ReasonDetail string          `json:"reason_detail,omitempty"`
	Message      string          `json:"message,omitempty"`
	DurationMS   int64           `json:"duration_ms"`
	Details      json.RawMessage `json:"details,omitempty"`
}

// Artifact is a file a check produced (a verifier log, metrics). The host
// stores it under the VM's directory at Name, which ValidArtifactName checks.
type Artifact struct {
	Check     string `json:"check"` // the result it belongs to, e.g. verifier/probes/loop
	Name      string `json:"name"`  // relative path: dir/file, e.g. verifier/probes/loop.log
	Data      string `json:"data"`  // UTF-8 text
	Truncated bool   `json:"truncated,omitempty"`
}

// Done ends the guest's report. Nothing may follow it.
type Done struct {
	// Results is the number of result messages the guest sent; the host
	// refuses a done that disagrees with what arrived.
	Results int `json:"results"`
}

// Duration is a time.Duration that encodes as a Go duration string.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalText implements encoding.TextUnmarshaler, for matrix.yaml: a Go
// duration string. Ranges are the check's Validate's business.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errors.New("expected a duration like 10m or 90s")
	}
	*d = Duration(v)
	return nil
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
