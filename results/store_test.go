package results

import (
	"os"
	"path/filepath"
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
