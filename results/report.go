package results

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
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
}

// Report is the content of results.json.
type Report struct {
	Run     RunInfo  `json:"run"`
	Results []Record `json:"results"`
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
