package vmrunner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestExitCode(t *testing.T) {
	pass := Record{Status: protocol.StatusPass}
	fail := Record{Status: protocol.StatusFail}
	skip := Record{Status: protocol.StatusSkip}
	infra := Record{Status: protocol.StatusError, ErrorKind: KindPanic}
	bad := Record{Status: protocol.StatusError, ErrorKind: KindBadInput}
	intr := Record{Status: protocol.StatusError, ErrorKind: KindInterrupted}
	tests := []struct {
		name string
		recs []Record
		want int
	}{
		{"empty", nil, ExitOK},
		{"all pass", []Record{pass, skip, pass}, ExitOK},
		{"a failure", []Record{pass, fail}, ExitFail},
		{"infra beats failure", []Record{fail, infra}, ExitInfra},
		{"bad input beats infra", []Record{infra, bad, fail}, ExitBadInput},
		{"interrupted beats all", []Record{bad, intr}, ExitInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.recs); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

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

func TestValidRelease(t *testing.T) {
	for s, want := range map[string]bool{
		"6.1.0-50-amd64": true, "6.12.117+deb13-cloud-arm64": true, "": false,
		"../../etc": false, "6.1 rm -rf": false, string(make([]byte, 200)): false,
	} {
		if got := validRelease(s); got != want {
			t.Errorf("validRelease(%q) = %v", s, got)
		}
	}
}
