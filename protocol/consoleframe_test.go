package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// scanAll returns the text and the frames a scanner finds in stream, read
// one byte at a time so that every prefix is cut by a read.
func scanAll(t *testing.T, stream []byte) (string, []string, []error) {
	t.Helper()
	s := NewFrameScanner(iotest.OneByteReader(bytes.NewReader(stream)))
	var text strings.Builder
	var frames []string
	var errs []error
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			return text.String(), frames, errs
		}
		if err != nil {
			t.Fatal(err)
		}
		text.Write(c.Text)
		switch {
		case c.Err != nil:
			errs = append(errs, c.Err)
		case c.Frame != nil:
			frames = append(frames, string(c.Frame))
		}
	}
}

func TestFrameScanner(t *testing.T) {
	msg := []byte(`{"v":1,"type":"ready","ready":{}}`)
	frame := string(AppendFrame(nil, msg))
	bad := strings.Replace(frame, "eyJ", "eyK", 1) // one character changed: the checksum fails
	cut := frame[:len(frame)/2] + "\n"
	// A kernel message printed while the frame was going out: the frame's
	// first half, the message, then the rest of the frame as a line of its own.
	panicLine := "[    5.1] Kernel panic - not syncing: Attempted to kill init!\n"
	mixed := frame[:len(frame)/2] + panicLine + frame[len(frame)/2:]
	for _, tc := range []struct {
		name, stream, text string
		frames             []string
		errs               int
	}{
		{"text only", "[    0.1] Linux version 6.1\nno newline", "[    0.1] Linux version 6.1\nno newline", nil, 0},
		{"a frame between lines", "boot\n" + frame + "after\n", "boot\nafter\n", []string{string(msg)}, 0},
		{"a frame after text without newline", "[ 1.2] partial" + frame + frame, "[ 1.2] partial", []string{string(msg), string(msg)}, 0},
		{"a prefix-like text", "=vmrunner1 is not it\n=vmrun", "=vmrunner1 is not it\n=vmrun", nil, 0},
		// A frame that cannot be decoded is kept as text: what cut it is
		// the kernel's.
		{"a damaged frame", bad + frame, bad, []string{string(msg)}, 1},
		{"a frame cut by kernel text", cut + frame, cut, []string{string(msg)}, 1},
		{"kernel text in a frame", mixed + frame, mixed, []string{string(msg)}, 1},
		{"a frame cut by the end", frame[:20], frame[:20], nil, 1},
		{"CRLF", strings.TrimSuffix(frame, "\n") + "\r\nx", "x", []string{string(msg)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, frames, errs := scanAll(t, []byte(tc.stream))
			if text != tc.text {
				t.Errorf("text %q, want %q", text, tc.text)
			}
			if strings.Join(frames, "|") != strings.Join(tc.frames, "|") {
				t.Errorf("frames %q, want %q", frames, tc.frames)
			}
			if len(errs) != tc.errs {
				t.Errorf("errors %v, want %d", errs, tc.errs)
			}
			for _, err := range errs {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v is not ErrMalformed", err)
				}
			}
		})
	}
}

func TestFrameScannerTooLarge(t *testing.T) {
	huge := FramePrefix + "1 00000000 " + strings.Repeat("A", maxFrameLine+10) + "\n"
	_, frames, errs := scanAll(t, []byte(huge+string(AppendFrame(nil, []byte("{}")))))
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLarge) {
		t.Errorf("errors %v, want one ErrTooLarge", errs)
	}
	if len(frames) != 1 || frames[0] != "{}" {
		t.Errorf("frames %q, want the frame after the large one", frames)
	}
}

// TestFrameRoundTrip: an Encoder writing through a FrameWriter and a
// Decoder reading through a FrameReader, kernel text between the frames.
func TestFrameRoundTrip(t *testing.T) {
	var wire bytes.Buffer
	enc := NewEncoder(FrameWriter{W: &wire})
	sent := []Message{
		{Type: TypeReady, Ready: &Ready{Agent: "a", KernelRelease: "6.1.0-1-amd64"}},
		{Type: TypeLog, Log: &Log{Level: "info", Text: "line\nwith =vmrunner1= and \x1b[31m"}},
		{Type: TypeDone, Done: &Done{Results: 0}},
	}
	for _, m := range sent {
		wire.WriteString("[    2.0] random: crng init done\n")
		if err := enc.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(NewFrameReader(&wire))
	for _, want := range sent {
		m, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != want.Type {
			t.Fatalf("got %s, want %s", m.Type, want.Type)
		}
	}
	if m, err := dec.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v %v, want EOF", m, err)
	}
	if m, _ := NewDecoder(NewFrameReader(strings.NewReader(string(AppendFrame(nil, []byte(`{"v":1,"type":"log","log":{"level":"info","text":"x"}}`)))))).Next(); m.Log == nil || m.Log.Text != "x" {
		t.Errorf("decoded %+v", m)
	}
}

// A file chunk crosses the console channel whole, newlines at the end of
// its data included.
func TestFrameFileChunk(t *testing.T) {
	var wire bytes.Buffer
	enc := NewEncoder(FrameWriter{W: &wire})
	data := []byte("ELF\x00\n\nends with newlines\n\n")
	if err := enc.Send(Message{Type: TypeFile, File: &FileChunk{Path: "/vmrunner/objects/a.o", Data: data}}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Send(Message{Type: TypeBye}); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(NewFrameReader(&wire))
	m, err := dec.Next()
	if err != nil || m.Type != TypeFile || !bytes.Equal(m.File.Data, data) {
		t.Fatalf("chunk = %+v, %v", m.File, err)
	}
	if m, err := dec.Next(); err != nil || m.Type != TypeBye {
		t.Fatalf("after the chunk: %v, %v", m.Type, err)
	}
}

// TestFrameLines: a message too long for one line goes as parts and a last
// frame line; the scanner puts it together whatever kernel text comes
// between the lines, and refuses parts that are cut, mixed, left without
// their frame line, or too many.
func TestFrameLines(t *testing.T) {
	msg := []byte(`{"v":1,"type":"log","log":{"level":"info","text":"` + strings.Repeat("0123456789", 300) + `"}}`)
	lines := FrameLines(msg, 200)
	if len(lines) < 10 {
		t.Fatalf("%d lines for %d bytes at 200 a line, want parts", len(lines), len(msg))
	}
	for i, l := range lines {
		if len(l) > 200 {
			t.Errorf("line %d is %d bytes, want at most 200", i, len(l))
		}
		want := FramePartPrefix
		if i == len(lines)-1 {
			want = FramePrefix
		}
		if !bytes.HasPrefix(l, []byte(want)) || !bytes.HasSuffix(l, []byte("\n")) {
			t.Errorf("line %d = %.20q…, want %q … newline", i, l, want)
		}
	}
	if one := FrameLines([]byte("{}"), 900); len(one) != 1 || !bytes.Equal(one[0], AppendFrame(nil, []byte("{}"))) {
		t.Errorf("a short message: %q, want one frame line as AppendFrame writes it", one)
	}
	kernel := "[    7.5] printk: kernel text between records\n"
	join := func(sep string, ls [][]byte) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(sep)
			b.Write(l)
		}
		return b.String()
	}
	withText := join(kernel, lines)
	// A kernel message inside a part: the part is refused as a whole.
	third := string(lines[2])
	mixedPart := join("", lines[:2]) + third[:40] + kernel + third[40:] + join("", lines[3:])
	tooMany := strings.Repeat(FramePartPrefix+strings.Repeat("QUFB", 4096)+"\n", maxFrameLine/(4*4096)+2) + string(lines[len(lines)-1])
	for _, tc := range []struct {
		name, stream string
		frames       []string
		errs         int
		errIs        error
	}{
		{"parts", join("", lines), []string{string(msg)}, 0, nil},
		{"kernel text between the parts", withText + kernel, []string{string(msg)}, 0, nil},
		{"parts after a printk timestamp", join("[   1.000000] ", lines), []string{string(msg)}, 0, nil},
		{"kernel text inside a part", mixedPart, nil, 2, ErrMalformed},
		{"a part lost", join("", lines[:3]) + join("", lines[4:]), nil, 1, ErrMalformed},
		{"parts without their frame line", join("", lines[:len(lines)-1]), nil, 1, ErrMalformed},
		{"too many parts", tooMany, nil, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, frames, errs := scanAll(t, []byte(tc.stream))
			if strings.Join(frames, "|") != strings.Join(tc.frames, "|") {
				t.Errorf("frames %.80q, want %.80q", frames, tc.frames)
			}
			if len(errs) != tc.errs {
				t.Errorf("errors %v, want %d", errs, tc.errs)
			}
			for _, err := range errs {
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %v is not %v", err, tc.errIs)
				}
			}
			if tc.errs == 0 && strings.Contains(text, "=vmrunner1") {
				t.Errorf("text holds frame lines: %.120q", text)
			}
		})
	}
}

// FuzzFrameScanner: whatever the console carries, the scanner ends, loses
// no text that is not a frame's, and takes for a message only what a
// frame's checksum vouches for.
func FuzzFrameScanner(f *testing.F) {
	for _, l := range FrameLines([]byte(`{"v":1,"type":"done","done":{"results":2}}`), 64) {
		f.Add(l)
	}
	f.Add([]byte("[ 1.0] text\n" + FramePartPrefix + "QUFB\n" + FramePrefix + "3 00000000 QUFB\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		s := NewFrameScanner(bytes.NewReader(stream))
		for n := 0; ; n++ {
			c, err := s.Next()
			if err != nil {
				return
			}
			if n > len(stream)+2 {
				t.Fatalf("%d chunks from %d bytes", n, len(stream))
			}
			if c.Frame != nil && c.Err != nil {
				t.Fatalf("a frame with an error: %v", c.Err)
			}
		}
	})
}

// A guest's frame line that never ends is refused as soon as it passes
// MaxGuestFrameLine, without waiting for more (issue 20, item 7: a
// 1 MiB+ line without a newline waited for the VM's timeout); a whole
// message in the lines a guest writes still goes through.
func TestGuestFrameScannerLineBound(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	go func() {
		_, _ = io.WriteString(w, "boot text\n"+FramePrefix+"1048576 00000000 ")
		_, _ = io.WriteString(w, strings.Repeat("QUFB", 2*MaxGuestFrameLine/4))
		// Then nothing, and no end of stream.
	}()
	s := NewGuestFrameScanner(r)
	got := make(chan error, 1)
	go func() {
		for {
			c, err := s.Next()
			if err != nil || c.Err != nil {
				got <- errors.Join(err, c.Err)
				return
			}
		}
	}()
	select {
	case err := <-got:
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("a line of more than %d bytes", MaxGuestFrameLine)) {
			t.Errorf("err = %v, want the line bound", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal: the scanner waits for a newline that never comes")
	}

	msg := []byte(`{"v":1,"type":"log","log":{"level":"info","text":"` + strings.Repeat("y", MaxMessageSize-100) + `"}}`)
	var stream bytes.Buffer
	for _, line := range FrameLines(msg, 900) {
		stream.Write(line)
	}
	c, err := NewGuestFrameScanner(&stream).Next()
	if err != nil || c.Err != nil || !bytes.Equal(c.Frame, msg) {
		t.Errorf("a %d-byte message in 900-byte lines: %v %v", len(msg), err, c.Err)
	}
}
