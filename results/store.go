package results

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

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

// VMDir returns (and creates) the directory of one kernel × arch, name
// under the run directory.
func (s *Store) VMDir(name string) (string, error) {
	d := filepath.Join(s.Dir, name)
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

func replaceSymlink(target, link string) error {
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}
