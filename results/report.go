package results

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// RunInfo describes a whole run.
type RunInfo struct {
	ID         string    `json:"id"`
	Matrix     string    `json:"matrix"`
	Version    string    `json:"vmrunner_version"`
	Host       string    `json:"host"`
	HostArch   string    `json:"host_arch"`
	Accel      string    `json:"accel"` // as requested; each record says what was used
	Parallel   int       `json:"parallel"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	Finished   bool      `json:"finished"`
	ExitCode   int       `json:"exit_code"`
	// Targets are the planned kernel × arch, in plan order, so that a
	// reader of an unfinished run can name the VMs it lacks. Absent from
	// results.json written before vmrunner recorded them.
	Targets []Target `json:"targets,omitempty"`
	// Shard is set in a shard of a plan (run --shard) and in a merge of them.
	Shard *Shard `json:"shard,omitempty"`
}

// Target is one kernel × arch.
type Target struct {
	Kernel string `json:"kernel"`
	Arch   string `json:"arch"`
}

func (t Target) String() string { return t.Kernel + "/" + t.Arch }

// TargetOf is the kernel × arch a record is about.
func TargetOf(r Record) Target { return Target{r.Kernel, r.Arch} }

// Report is the content of results.json.
type Report struct {
	Run     RunInfo  `json:"run"`
	Results []Record `json:"results"`
}

// Incomplete reports whether the run did not record its end: vmrunner was
// killed or crashed, or is still running. Its records are those of the VMs
// that finished; the others are missing, not passed.
func (r Report) Incomplete() bool { return !r.Run.Finished }

// Missing returns the planned targets of an unfinished run that have no
// record, in plan order; nil for a finished run or an unknown plan.
func (r Report) Missing() []Target {
	if !r.Incomplete() {
		return nil
	}
	seen := map[Target]bool{}
	for _, rec := range r.Results {
		seen[TargetOf(rec)] = true
	}
	var out []Target
	for _, t := range r.Run.Targets {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// NotRun returns, for each target Missing names, an error record of kind
// KindIncomplete about the VM (check VMCheck), so that a renderer shows the
// VMs an unfinished run lacks like any other error.
func (r Report) NotRun() []Record {
	var out []Record
	for _, t := range r.Missing() {
		out = append(out, Record{Kernel: t.Kernel, Arch: t.Arch, Check: VMCheck, Status: protocol.StatusError, ErrorKind: KindIncomplete,
			Message: "no results: the run stopped before this VM finished (results.json says finished: false)"})
	}
	return out
}

// ReadReport loads a results.json.
func ReadReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read results: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}
