package vmrunner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// Error kinds say why a record has status error. Bad input is the user's to
// fix (exit 2); every other kind is infrastructure (exit 3).
const (
	KindBadInput    = "bad-input"
	KindKernel      = "kernel"       // resolving or downloading the kernel failed
	KindInitramfs   = "initramfs"    // building the initramfs failed
	KindQEMU        = "qemu"         // QEMU missing, failed to start, or died
	KindBootTimeout = "boot-timeout" // no agent message in time
	KindTimeout     = "timeout"      // the VM overran its time limit
	KindPanic       = "panic"        // the guest kernel panicked
	KindAgent       = "agent"        // the agent stopped before reporting done
	KindProtocol    = "protocol"     // the guest sent something invalid
	KindInterrupted = "interrupted"  // the run was interrupted
	KindCheck       = "check"        // the check itself could not run (guest-side error)
)

// Record is one kernel × arch × check outcome, as written to results.json.
type Record struct {
	Kernel        string          `json:"kernel"`
	Arch          kernels.Arch    `json:"arch"`
	KernelRelease string          `json:"kernel_release,omitempty"`
	Source        *Source         `json:"source,omitempty"`
	Accel         Accel           `json:"accel,omitempty"`
	Check         string          `json:"check"`
	Status        protocol.Status `json:"status"`
	ErrorKind     string          `json:"error_kind,omitempty"`
	Message       string          `json:"message,omitempty"`
	DurationMS    int64           `json:"duration_ms"`
	Details       json.RawMessage `json:"details,omitempty"`
	Splats        []Splat         `json:"splats,omitempty"`
	Console       string          `json:"console,omitempty"`   // path relative to the run directory
	Artifacts     []string        `json:"artifacts,omitempty"` // files the check produced, relative to the run directory
	BootMS        int64           `json:"boot_ms,omitempty"`   // QEMU start to the agent's first message
	Attempts      int             `json:"attempts,omitempty"`  // boots it took (more than 1 after an infrastructure retry)
	Flaky         bool            `json:"flaky,omitempty"`     // passed the infrastructure only after a retry
}

// Source identifies the kernel a record ran on.
type Source struct {
	Type    string `json:"type"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Suite   string `json:"suite,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	URL     string `json:"url,omitempty"`
}

func sourceOf(k *kernels.Kernel) *Source {
	if k == nil {
		return nil
	}
	return &Source{Type: k.Origin.Type, Package: k.Origin.Package, Version: k.Origin.Version,
		Suite: k.Origin.Suite, SHA256: k.SHA256, URL: k.Origin.URL}
}

// RunInfo describes a whole run.
type RunInfo struct {
	ID         string    `json:"id"`
	Matrix     string    `json:"matrix"`
	Version    string    `json:"vmrunner_version"`
	Host       string    `json:"host"`
	HostArch   string    `json:"host_arch"`
	Accel      Accel     `json:"accel"` // as requested; each record says what was used
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

// Store owns a run directory and rewrites results.json atomically each time
// records are added, so a crash loses at most the VMs in flight.
type Store struct {
	Dir string

	mu     sync.Mutex
	report Report
}

// NewStore creates base/<id> and points base/latest at it.
func NewStore(base string, info RunInfo) (*Store, error) {
	dir := filepath.Join(base, info.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if err := replaceSymlink(info.ID, filepath.Join(base, "latest")); err != nil {
		return nil, fmt.Errorf("link latest run: %w", err)
	}
	s := &Store{Dir: dir, report: Report{Run: info, Results: []Record{}}}
	return s, s.writeLocked()
}

// VMDir returns (and creates) the directory for one kernel × arch.
func (s *Store) VMDir(t Target) (string, error) {
	d := filepath.Join(s.Dir, t.Dirname())
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("create VM directory: %w", err)
	}
	return d, nil
}

// Add appends records and rewrites results.json.
func (s *Store) Add(recs ...Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.Results = append(s.report.Results, recs...)
	return s.writeLocked()
}

// Finish records the end of the run and rewrites results.json.
func (s *Store) Finish(d time.Duration, exit int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.Run.DurationMS = d.Milliseconds()
	s.report.Run.Finished = true
	s.report.Run.ExitCode = exit
	return s.writeLocked()
}

// Report returns a copy of what has been stored.
func (s *Store) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report
	r.Results = append([]Record(nil), s.report.Results...)
	return r
}

func (s *Store) writeLocked() error {
	b, err := json.MarshalIndent(s.report, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	return WriteFileAtomic(filepath.Join(s.Dir, "results.json"), append(b, '\n'))
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

// WriteFileAtomic writes through a temporary file in the same directory, so
// that a reader never sees half a file.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

func replaceSymlink(target, link string) error {
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}
