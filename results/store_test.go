package results

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestStore(t *testing.T) {
	base := t.TempDir()
	s, err := NewStore(base, RunInfo{ID: "run1", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(base, "latest")); err != nil || target != "run1" {
		t.Fatalf("latest -> %q, %v", target, err)
	}
	if err := s.Add(Record{Kernel: "6.1", Arch: "x86_64", Check: "btf", Status: protocol.StatusPass}); err != nil {
		t.Fatal(err)
	}
	// results.json is complete after every Add, before Finish.
	r, err := ReadReport(filepath.Join(base, "run1", "results.json"))
	if err != nil || len(r.Results) != 1 || r.Run.Finished {
		t.Fatalf("after Add: %+v, %v", r, err)
	}
	if err := s.Finish(time.Second, ExitOK); err != nil {
		t.Fatal(err)
	}
	r, err = ReadReport(filepath.Join(base, "run1", "results.json"))
	if err != nil || !r.Run.Finished || r.Run.DurationMS != 1000 {
		t.Fatalf("after Finish: %+v, %v", r.Run, err)
	}
	// A second run moves latest; no temporary files are left behind.
	if _, err := NewStore(base, RunInfo{ID: "run2"}); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(filepath.Join(base, "latest")); target != "run2" {
		t.Errorf("latest -> %q, want run2", target)
	}
	entries, _ := os.ReadDir(filepath.Join(base, "run1"))
	for _, e := range entries {
		if e.Name() != "results.json" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestStoreConcurrentRuns starts many runs at once in one base directory, as
// simultaneous `vmrunner run --out DIR` do: every run must get its store,
// latest must end up pointing at one of them, and no temporary link may stay.
func TestStoreConcurrentRuns(t *testing.T) {
	base := t.TempDir()
	const runs = 64
	ids := map[string]bool{}
	errs := make(chan error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		id := fmt.Sprintf("run%02d", i)
		ids[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				s, err := NewStore(base, RunInfo{ID: id})
				if err == nil {
					err = s.Add(Record{Kernel: "6.1", Arch: "x86_64", Check: "btf", Status: protocol.StatusPass, DurationMS: int64(round)})
				}
				if err == nil {
					err = s.Finish(time.Second, ExitOK)
				}
				if err != nil {
					errs <- fmt.Errorf("%s round %d: %w", id, round, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	target, err := os.Readlink(filepath.Join(base, "latest"))
	if err != nil || !ids[target] {
		t.Fatalf("latest -> %q, %v; want one of the runs", target, err)
	}
	if r, err := ReadReport(filepath.Join(base, "latest", "results.json")); err != nil || !r.Run.Finished || len(r.Results) != 1 {
		t.Errorf("latest/results.json: %+v, %v", r, err)
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != "latest" && !ids[e.Name()] {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if len(entries) != runs+1 {
		t.Errorf("%d entries in the base directory, want %d runs and latest", len(entries), runs+1)
	}
}
