package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var sum0 = strings.Repeat("ab", 32)

func validHost() *HostState {
	return &HostState{TimeUnixNS: time.Now().UnixNano(), Entropy: bytes.Repeat([]byte{7}, 64), Boot: BootCold}
}

// A plan with its host state and files, a chunk of the largest size with
// the longest path, and the guest's answer go through the codec unchanged.
func TestPlanFilesRoundTrip(t *testing.T) {
	longPath := GuestFilesRoot + strings.Repeat("a", 1024-len(GuestFilesRoot))
	saved := time.Now().Add(-time.Hour).UnixNano()
	msgs := []Message{
		{Type: TypePlan, Plan: &Plan{
			Checks: []CheckSpec{{Name: "verifier"}},
			Host:   &HostState{TimeUnixNS: time.Now().UnixNano(), Entropy: bytes.Repeat([]byte{1}, MaxEntropy), Boot: BootSnapshot, SnapshotSavedUnixNS: saved},
			Files:  []FileSpec{{Path: "/vmrunner/objects/probes.o", Size: 3, SHA256: sum0, Mode: FileMode}, {Path: longPath, Size: FileChunkSize, SHA256: sum0, Mode: FileModeExec}},
			More:   true,
		}},
		{Type: TypeFile, File: &FileChunk{Path: longPath, Offset: 0, Data: bytes.Repeat([]byte{0xff}, FileChunkSize)}},
		{Type: TypePrepared, Prepared: &Prepared{Boot: BootSnapshot, SnapshotAgeMS: 3600_000, ClockStepMS: 3599_000, EntropyBytes: 64, Files: 2, FileBytes: FileChunkSize + 3}},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, m := range msgs {
		if err := enc.Send(m); err != nil {
			t.Fatalf("send %s: %v", m.Type, err)
		}
	}
	// The chunk's data follows its line raw: the stream is not much
	// longer than the data.
	if buf.Len() > FileChunkSize+MaxEntropy*2+3*len(longPath)+2048 {
		t.Errorf("%d bytes on the wire for a chunk of %d", buf.Len(), FileChunkSize)
	}
	dec := NewDecoder(&buf)
	for _, want := range msgs {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		switch got.Type {
		case TypePlan:
			if got.Plan.Host.SnapshotSavedUnixNS != saved || len(got.Plan.Host.Entropy) != MaxEntropy || len(got.Plan.Files) != 2 || !got.Plan.More {
				t.Errorf("plan came back as %+v", got.Plan)
			}
		case TypeFile:
			if !bytes.Equal(got.File.Data, want.File.Data) || got.File.Path != longPath {
				t.Errorf("chunk came back with %d bytes at %s", len(got.File.Data), got.File.Path)
			}
		case TypePrepared:
			if *got.Prepared != *want.Prepared {
				t.Errorf("prepared = %+v, want %+v", *got.Prepared, *want.Prepared)
			}
		}
	}
}

func TestPlanFilesRejects(t *testing.T) {
	file := func(p string, size int64, mode uint32) FileSpec {
		return FileSpec{Path: p, Size: size, SHA256: sum0, Mode: mode}
	}
	plan := func(f func(*Plan)) Message {
		p := &Plan{Host: validHost()}
		f(p)
		return Message{Type: TypePlan, Plan: p}
	}
	tooMany := make([]FileSpec, MaxFiles+1)
	for i := range tooMany {
		tooMany[i] = file("/vmrunner/f-"+strconv.Itoa(i), 0, FileMode)
	}
	tests := []struct {
		name string
		m    Message
	}{
		{"no host time", plan(func(p *Plan) { p.Host.TimeUnixNS = 0 })},
		{"little entropy", plan(func(p *Plan) { p.Host.Entropy = p.Host.Entropy[:MinEntropy-1] })},
		{"much entropy", plan(func(p *Plan) { p.Host.Entropy = make([]byte, MaxEntropy+1) })},
		{"bad boot", plan(func(p *Plan) { p.Host.Boot = "warm" })},
		{"snapshot without time", plan(func(p *Plan) { p.Host.Boot = BootSnapshot })},
		{"snapshot from the future", plan(func(p *Plan) {
			p.Host.Boot, p.Host.SnapshotSavedUnixNS = BootSnapshot, p.Host.TimeUnixNS+1
		})},
		{"cold with snapshot time", plan(func(p *Plan) { p.Host.SnapshotSavedUnixNS = 1 })},
		{"path outside", plan(func(p *Plan) { p.Files = []FileSpec{file("/etc/passwd", 1, FileMode)} })},
		{"path escaping", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/../etc/passwd", 1, FileMode)} })},
		{"path with newline", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/a\nb", 1, FileMode)} })},
		{"root itself", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/", 1, FileMode)} })},
		{"twice", plan(func(p *Plan) {
			p.Files = []FileSpec{file("/vmrunner/a", 1, FileMode), file("/vmrunner/a", 1, FileMode)}
		})},
		{"file in file", plan(func(p *Plan) {
			p.Files = []FileSpec{file("/vmrunner/a/b/c", 1, FileMode), file("/vmrunner/a/b", 1, FileMode)}
		})},
		{"dir outside", plan(func(p *Plan) { p.Dirs = []string{"/etc/cron.d"} })},
		{"dir escaping", plan(func(p *Plan) { p.Dirs = []string{"/vmrunner/share/../../etc"} })},
		{"dir is a file", plan(func(p *Plan) {
			p.Files, p.Dirs = []FileSpec{file("/vmrunner/a", 1, FileMode)}, []string{"/vmrunner/a"}
		})},
		{"dir in file", plan(func(p *Plan) {
			p.Files, p.Dirs = []FileSpec{file("/vmrunner/a", 1, FileMode)}, []string{"/vmrunner/a/b"}
		})},
		{"too many with dirs", plan(func(p *Plan) { p.Files, p.Dirs = tooMany[1:], []string{"/vmrunner/d"} })},
		{"too large", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/a", MaxFileSize+1, FileMode)} })},
		{"negative", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/a", -1, FileMode)} })},
		{"too large together", plan(func(p *Plan) {
			p.Files = []FileSpec{file("/vmrunner/a", MaxFileSize, FileMode), file("/vmrunner/b", MaxFileSize, FileMode), file("/vmrunner/c", 1, FileMode)}
		})},
		{"too many", plan(func(p *Plan) { p.Files = tooMany })},
		{"setuid", plan(func(p *Plan) { p.Files = []FileSpec{file("/vmrunner/a", 1, 0o4755)} })},
		{"bad sha", plan(func(p *Plan) {
			p.Files = []FileSpec{{Path: "/vmrunner/a", SHA256: strings.ToUpper(sum0), Mode: FileMode}}
		})},
		{"chunk outside", Message{Type: TypeFile, File: &FileChunk{Path: "/tmp/a", Size: 1}}},
		{"chunk empty", Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a"}}},
		{"chunk too large", Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a", Size: FileChunkSize + 1}}},
		{"chunk offset", Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a", Offset: -1, Size: 1}}},
		{"prepared bad boot", Message{Type: TypePrepared, Prepared: &Prepared{Boot: "x"}}},
		{"prepared cold with age", Message{Type: TypePrepared, Prepared: &Prepared{Boot: BootCold, SnapshotAgeMS: 5}}},
		{"prepared files", Message{Type: TypePrepared, Prepared: &Prepared{Boot: BootCold, Files: MaxFiles + 1}}},
		{"file without payload", Message{Type: TypeFile}},
		{"prepared without payload", Message{Type: TypePrepared}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.V = Version
			b, err := jsonLine(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

// A file message whose data ends early is malformed, not a short chunk.
func TestFileChunkTruncated(t *testing.T) {
	var buf bytes.Buffer
	if err := NewEncoder(&buf).Send(Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a", Data: []byte("0123456789")}}); err != nil {
		t.Fatal(err)
	}
	buf.Truncate(buf.Len() - 2) // the newline after the data, and its last byte
	if _, err := NewDecoder(&buf).Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Next = %v, want ErrMalformed", err)
	}
}

func TestValidGuestFilePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/vmrunner/objects/probes.o":                  true,
		"/vmrunner/beyla/x86_64":                      true,
		"/vmrunner/a":                                 true,
		"/vmrunner/a/b/c/d/e/f/g":                     true,
		"/vmrunner/share/0/my dir/x+y@z.go":           true,
		"/vmrunner/" + strings.Repeat("a/", 64) + "b": false,
		"/vmrunner/a\x00b":                            false,
		"/vmrunner/a\tb":                              false,
		"/vmrunner/\xff":                              false,
		"/vmrunner":                                   false,
		"/vmrunner/":                                  false,
		"vmrunner/a":                                  false,
		"/vmrunner//a":                                false,
		"/vmrunner/a/":                                false,
		"/vmrunner/./a":                               false,
		"/vmrunner/a/..":                              false,
		"/vmrunnerx/a":                                false,
		"/bin/sh":                                     false,
	} {
		if got := ValidGuestFilePath(p); got != want {
			t.Errorf("ValidGuestFilePath(%q) = %v, want %v", p, got, want)
		}
	}
}

func jsonLine(m Message) ([]byte, error) {
	// Not through the Encoder: it would refuse nothing, but says nothing
	// either; these messages are meant to be invalid.
	return json.Marshal(m)
}

// A released chunk's buffer serves the next chunk, which reads its own
// bytes and no more.
func TestFileChunkRelease(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	first, second := bytes.Repeat([]byte{'a'}, FileChunkSize), []byte("short")
	for _, d := range [][]byte{first, second} {
		if err := enc.Send(Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a", Data: d}}); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(&buf)
	for _, want := range [][]byte{first, second} {
		m, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.File.Data, want) {
			t.Fatalf("chunk of %d bytes, want %d", len(m.File.Data), len(want))
		}
		m.File.Release()
		if m.File.Data != nil {
			t.Error("a released chunk keeps its data")
		}
	}
}

// A file message's data goes where FileData says, when it says a place of
// the right size, and into a buffer of the Decoder's otherwise.
func TestDecoderFileData(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, d := range []string{"into the file", "elsewhere"} {
		if err := enc.Send(Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/a", Data: []byte(d)}}); err != nil {
			t.Fatal(err)
		}
	}
	file := make([]byte, len("into the file"))
	dec := NewDecoder(&buf)
	dec.FileData = func(c *FileChunk) []byte {
		if c.Size == len(file) {
			return file
		}
		return file[:1] // the wrong size: not used
	}
	m, err := dec.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != "into the file" || &m.File.Data[0] != &file[0] {
		t.Errorf("data %q read into %q", m.File.Data, file)
	}
	if m, err = dec.Next(); err != nil || string(m.File.Data) != "elsewhere" || &m.File.Data[0] == &file[0] {
		t.Errorf("second chunk %q, %v", m.File.Data, err)
	}
}
