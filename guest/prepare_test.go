package guest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func fileSpec(path string, data []byte, mode uint32) protocol.FileSpec {
	sum := sha256.Sum256(data)
	return protocol.FileSpec{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Mode: mode}
}

// sendFile sends data as the host does, in chunks of at most n bytes.
func (h *host) sendFile(path string, data []byte, n int) {
	h.t.Helper()
	for off := 0; off < len(data); off += n {
		end := min(off+n, len(data))
		h.send(protocol.Message{Type: protocol.TypeFile, File: &protocol.FileChunk{Path: path, Offset: int64(off), Data: data[off:end]}})
	}
}

// hostState records what the agent did with a plan's host state.
type hostState struct {
	clock   time.Time
	entropy []byte
}

func (s *hostState) agent(root string, checks map[string]Check) *Agent {
	return &Agent{
		FilesRoot: root, Checks: checks,
		SetClock:   func(t time.Time) error { s.clock = t; return nil },
		AddEntropy: func(b []byte) error { s.entropy = append([]byte(nil), b...); return nil },
	}
}

// A restored guest's plan: the agent takes the host's clock and entropy
// and the files, says so in prepared, and only then runs the checks, which
// find the files in place.
func TestAgentPrepare(t *testing.T) {
	root := t.TempDir()
	object := bytes.Repeat([]byte("BPF object "), 70000) // 770 kB: several chunks
	tool := []byte("#!/bin/sh\n")
	var s hostState
	var seen []byte
	h, errc := startAgent(t, s.agent(root, map[string]Check{
		"reads": func(context.Context, json.RawMessage) (Outcome, error) {
			var err error
			seen, err = os.ReadFile(filepath.Join(root, "vmrunner/objects/probes.o"))
			return Outcome{Status: protocol.StatusPass}, err
		},
	}))
	h.expect(protocol.TypeReady)

	hostTime := time.Now().Add(time.Hour) // the guest is an hour behind
	saved := hostTime.Add(-90 * time.Minute)
	entropy := bytes.Repeat([]byte{0x5a}, 64)
	files := []protocol.FileSpec{
		fileSpec("/vmrunner/objects/probes.o", object, protocol.FileMode),
		fileSpec("/vmrunner/beyla/bin", tool, protocol.FileModeExec),
		fileSpec("/vmrunner/objects/empty.o", nil, protocol.FileMode),
	}
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{
		Checks: []protocol.CheckSpec{{Name: "reads"}},
		Host: &protocol.HostState{TimeUnixNS: hostTime.UnixNano(), Entropy: entropy,
			Boot: protocol.BootSnapshot, SnapshotSavedUnixNS: saved.UnixNano()},
		Files: files,
		Dirs:  []string{"/vmrunner/share/1/empty", "/vmrunner/objects"},
	}})
	h.sendFile(files[0].Path, object, protocol.FileChunkSize)
	h.sendFile(files[1].Path, tool, protocol.FileChunkSize)

	p := h.expect(protocol.TypePrepared).Prepared
	want := protocol.Prepared{Boot: protocol.BootSnapshot, SnapshotAgeMS: (90 * time.Minute).Milliseconds(),
		EntropyBytes: 64, Files: 3, FileBytes: int64(len(object) + len(tool))}
	step := p.ClockStepMS
	p.ClockStepMS = 0
	if *p != want {
		t.Errorf("prepared = %+v, want %+v", *p, want)
	}
	if step < time.Hour.Milliseconds()-1000 || step > time.Hour.Milliseconds()+1000 {
		t.Errorf("clock step = %d ms, want about an hour", step)
	}
	if d := s.clock.Sub(hostTime); d < 0 || d > 5*time.Second {
		t.Errorf("clock set to %s, %s after the host's time", s.clock, d)
	}
	if !bytes.Equal(s.entropy, entropy) {
		t.Errorf("entropy = %x", s.entropy)
	}
	h.expect(protocol.TypeCheckStart)
	if r := h.expect(protocol.TypeResult).Result; r.Status != protocol.StatusPass {
		t.Errorf("check: %s %s", r.Status, r.Message)
	}
	if !bytes.Equal(seen, object) {
		t.Errorf("the check read %d bytes of the object, want %d", len(seen), len(object))
	}
	h.expect(protocol.TypeDone)
	h.send(protocol.Message{Type: protocol.TypeBye})
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != os.FileMode(f.Mode) || fi.Size() != f.Size {
			t.Errorf("%s: mode %v, %d bytes", f.Path, fi.Mode(), fi.Size())
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "vmrunner/share/1/empty")); err != nil || !fi.IsDir() {
		t.Errorf("the plan's empty directory was not made: %v", err)
	}
	assertNoTemporaries(t, root)
}

// Whatever goes wrong with a file, the agent stops before any check, says
// why on the channel, and leaves nothing half-written where a check would
// find it.
func TestAgentPrepareRefuses(t *testing.T) {
	data := []byte("0123456789")
	spec := fileSpec("/vmrunner/objects/a.o", data, protocol.FileMode)
	tests := []struct {
		name   string
		spec   protocol.FileSpec
		send   func(h *host)
		hostOK bool // the host state applies
		want   string
	}{
		{"sha256 mismatch", spec, func(h *host) { h.sendFile(spec.Path, []byte("0123456780"), 4) }, true, "sha256"},
		{"out of order", spec, func(h *host) {
			h.send(protocol.Message{Type: protocol.TypeFile, File: &protocol.FileChunk{Path: spec.Path, Offset: 4, Data: data[4:]}})
		}, true, "want byte 0"},
		{"past its size", spec, func(h *host) { h.sendFile(spec.Path, append(data, 'x'), 11) }, true, "1 bytes past its size"},
		{"another file", spec, func(h *host) { h.sendFile("/vmrunner/objects/b.o", data, 4) }, true, "got data for /vmrunner/objects/b.o"},
		{"not a file", spec, func(h *host) { h.send(protocol.Message{Type: protocol.TypeBye}) }, true, "got a bye message"},
		{"clock refused", spec, func(*host) {}, false, "set the clock to the host's: operation not permitted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ran := false
			a := &Agent{FilesRoot: root, Checks: map[string]Check{"c": func(context.Context, json.RawMessage) (Outcome, error) {
				ran = true
				return Outcome{Status: protocol.StatusPass}, nil
			}}}
			a.SetClock = func(time.Time) error { return nil }
			if !tt.hostOK {
				a.SetClock = func(time.Time) error { return errors.New("operation not permitted") }
			}
			a.AddEntropy = func([]byte) error { return nil }
			h, errc := startAgent(t, a)
			h.expect(protocol.TypeReady)
			h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{
				Checks: []protocol.CheckSpec{{Name: "c"}},
				Host:   &protocol.HostState{TimeUnixNS: time.Now().UnixNano(), Entropy: make([]byte, 32), Boot: protocol.BootCold},
				Files:  []protocol.FileSpec{tt.spec},
			}})
			tt.send(h)
			if l := h.expect(protocol.TypeLog).Log; l.Level != "error" || !strings.Contains(l.Text, tt.want) {
				t.Errorf("log = %+v, want an error with %q", l, tt.want)
			}
			if err := wait(t, errc); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("agent error = %v, want %q", err, tt.want)
			}
			if ran {
				t.Error("a check ran")
			}
			if _, err := os.Stat(filepath.Join(root, spec.Path)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is in place: %v", spec.Path, err)
			}
			assertNoTemporaries(t, root)
		})
	}
}

// With More, the agent runs plan after plan (repro --watch), each with its
// own files, until bye.
func TestAgentMorePlans(t *testing.T) {
	root := t.TempDir()
	var s hostState
	var seen []string
	h, errc := startAgent(t, s.agent(root, map[string]Check{
		"reads": func(context.Context, json.RawMessage) (Outcome, error) {
			b, err := os.ReadFile(filepath.Join(root, "vmrunner/objects/x.o"))
			seen = append(seen, string(b))
			return Outcome{Status: protocol.StatusPass}, err
		},
	}))
	// The plan timeout must not apply between plans.
	h.expect(protocol.TypeReady)
	for i, content := range []string{"first", "second edit", "third"} {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		spec := fileSpec("/vmrunner/objects/x.o", []byte(content), protocol.FileMode)
		h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{
			Checks: []protocol.CheckSpec{{Name: "reads"}},
			Host:   &protocol.HostState{TimeUnixNS: time.Now().UnixNano(), Entropy: bytes.Repeat([]byte{byte(i)}, 32), Boot: protocol.BootCold},
			Files:  []protocol.FileSpec{spec},
			More:   true,
		}})
		h.sendFile(spec.Path, []byte(content), 4)
		h.expect(protocol.TypePrepared)
		h.expect(protocol.TypeCheckStart)
		h.expect(protocol.TypeResult)
		h.expect(protocol.TypeDone)
		if s.entropy[0] != byte(i) {
			t.Errorf("plan %d: entropy of plan %d", i, s.entropy[0])
		}
	}
	h.send(protocol.Message{Type: protocol.TypeBye})
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "first,second edit,third" {
		t.Errorf("the checks read %q", seen)
	}
}

// Between plans a host that goes away ends the agent without an error.
func TestAgentMoreHangup(t *testing.T) {
	h, errc := startAgent(t, &Agent{PlanTimeout: 50 * time.Millisecond})
	h.expect(protocol.TypeReady)
	h.send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{More: true}})
	h.expect(protocol.TypeDone)
	time.Sleep(100 * time.Millisecond) // longer than the plan timeout: still waiting
	h.w.Close()
	if err := wait(t, errc); err != nil {
		t.Fatal(err)
	}
}

func assertNoTemporaries(t *testing.T, root string) {
	t.Helper()
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".receiving-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// The reader is given each byte of the file being received at most once,
// in order, never past its end, and only for that file.
func TestFileSink(t *testing.T) {
	var s fileSink
	chunk := func(p string, off int64, size int) *protocol.FileChunk {
		return &protocol.FileChunk{Path: p, Offset: off, Size: size}
	}
	if s.place(chunk("/vmrunner/a", 0, 4)) != nil {
		t.Error("a place before any file is mapped")
	}
	mem := make([]byte, 10)
	s.set("/vmrunner/a", mem)
	for _, tt := range []struct {
		c    *protocol.FileChunk
		want int // offset in mem, -1 for none
	}{
		{chunk("/vmrunner/b", 0, 4), -1}, // another file
		{chunk("/vmrunner/a", 4, 4), 4},  // the reader was ahead: 0..4 came before the mapping
		{chunk("/vmrunner/a", 0, 4), -1}, // given out already
		{chunk("/vmrunner/a", 6, 2), -1}, // overlaps what was given
		{chunk("/vmrunner/a", 8, 4), -1}, // past the end
		{chunk("/vmrunner/a", 8, 2), 8},
	} {
		got := s.place(tt.c)
		switch {
		case tt.want < 0 && got != nil:
			t.Errorf("%+v: given a place", *tt.c)
		case tt.want >= 0 && (len(got) != tt.c.Size || &got[0] != &mem[tt.want]):
			t.Errorf("%+v: place of %d bytes, want mem[%d:]", *tt.c, len(got), tt.want)
		}
	}
	if gave := s.set("", nil); gave != 2 {
		t.Errorf("set says %d places were given, want 2", gave)
	}
	if s.place(chunk("/vmrunner/a", 0, 1)) != nil {
		t.Error("a place after the file was done")
	}
}
