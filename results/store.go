package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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
	for _, r := range recs {
		s.report.Results = append(s.report.Results, r.WithReason())
	}
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

// replaceSymlink points link at target atomically: a symlink made under a
// name no other run can pick, then renamed over link. Runs sharing an --out
// directory each move latest without touching another's temporary link; the
// last rename wins.
func replaceSymlink(target, link string) error {
	dir, base := filepath.Split(link)
	for range 100 {
		tmp := filepath.Join(dir, "."+base+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		err := os.Symlink(target, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, link); err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return nil
	}
	return fmt.Errorf("link %s: no free temporary name", link)
}
