package protocol

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

// The console channel: a kernel without a virtio console (neither built in
// nor a module) still has its serial console, ttyS0 or ttyAMA0, shared with
// the kernel's own messages. There the same messages travel as frames, one
// per line:
//
//	=vmrunner1= <length> <crc32> <base64 of the message's JSON>\n
//
// length is the decoded message's size in bytes, crc32 its IEEE checksum in
// 8 hex digits. The prefix tells a frame from kernel text, base64 keeps the
// frame free of bytes a tty or telnet would change, and the length and the
// checksum make a frame cut or mixed with kernel text an error rather than a
// message: text is never taken for a message.
//
// A message too long for one line goes as parts: lines that carry the
// first pieces of its base64, in order, then the frame line above with
// the last piece, whose length and checksum cover the whole message:
//
//	=vmrunner1+ <base64, a multiple of 4 characters>\n
//
// Kernel text may come between the parts (not inside one). The guest
// writes its frames as kernel log records (/dev/kmsg) so that the kernel
// prints each whole: a record is never cut by another, while text written
// to the tty is cut by any record printed while it drains (FrameLines).
const (
	// FramePrefix starts every frame. It may follow other text on a line
	// (a kernel message without its newline, a printk timestamp).
	FramePrefix = "=vmrunner1= "
	// FramePartPrefix starts a part of a message sent in several lines.
	FramePartPrefix = "=vmrunner1+ "
	// ChannelVirtio and ChannelConsole name the channel a conversation used.
	ChannelVirtio  = "virtio-serial"
	ChannelConsole = "console"
)

// maxFrameLine bounds a frame line after its prefix: the base64 of the
// largest message with its length and checksum.
var maxFrameLine = base64.StdEncoding.EncodedLen(MaxMessageSize) + 32

// MaxGuestFrameLine bounds a frame or part line from a guest, after its
// prefix (NewGuestFrameScanner). A guest writes a message as lines of
// about 900 bytes (FrameLines: one kernel log record each), so a longer
// line is refused as soon as it is this long: a line that never ends is a
// protocol error after 4 KiB, not after a message's worth of base64 over a
// slow serial console, or at the VM's timeout when less than that comes.
const MaxGuestFrameLine = 4 << 10

// AppendFrame appends msg (a message's JSON, without its newline) to dst as
// one frame line.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, FramePrefix...)
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	dst = fmt.Appendf(dst, "%08x ", crc32.ChecksumIEEE(msg))
	dst = base64.StdEncoding.AppendEncode(dst, msg)
	return append(dst, '\n')
}

// FrameLines returns msg (a message's JSON, without its newline) as frame
// lines, each ending in a newline and at most about maxLine bytes long:
// one line when it fits, else parts (FramePartPrefix) and a last frame
// line. maxLine below 64 is taken as 64.
func FrameLines(msg []byte, maxLine int) [][]byte {
	header := len(FramePrefix) + len(strconv.Itoa(len(msg))) + 10 // " <crc32> "
	piece := max(64, maxLine) - header - 1
	piece -= piece % 4
	enc := base64.StdEncoding.AppendEncode(nil, msg)
	var lines [][]byte
	for len(enc) > piece {
		line := append(append([]byte(FramePartPrefix), enc[:piece]...), '\n')
		lines = append(lines, line)
		enc = enc[piece:]
	}
	last := []byte(FramePrefix)
	last = strconv.AppendInt(last, int64(len(msg)), 10)
	last = fmt.Appendf(last, " %08x ", crc32.ChecksumIEEE(msg))
	last = append(append(last, enc...), '\n')
	return append(lines, last)
}

// isBase64 reports whether b holds only characters of standard base64.
func isBase64(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

// parseFrame decodes a frame line after its prefix, newline excluded, with
// the base64 of the parts before it (if any) in front of its own.
func parseFrame(body, parts []byte) ([]byte, error) {
	body = bytes.TrimRight(body, "\r")
	fields := bytes.Fields(body)
	if len(fields) != 3 {
		return nil, fmt.Errorf("console frame: %w: %d fields, want 3 (cut or mixed with other text)", ErrMalformed, len(fields))
	}
	if len(parts) > 0 {
		fields[2] = append(append([]byte(nil), parts...), fields[2]...)
	}
	n, err := strconv.Atoi(string(fields[0]))
	if err != nil || n < 0 || n > MaxMessageSize {
		return nil, fmt.Errorf("console frame: %w: bad length %.16q", ErrMalformed, fields[0])
	}
	sum, err := strconv.ParseUint(string(fields[1]), 16, 32)
	if err != nil || len(fields[1]) != 8 {
		return nil, fmt.Errorf("console frame: %w: bad checksum %.16q", ErrMalformed, fields[1])
	}
	msg, err := base64.StdEncoding.AppendDecode(nil, fields[2])
	switch {
	case err != nil:
		return nil, fmt.Errorf("console frame: %w: %v", ErrMalformed, err)
	case len(msg) != n:
		return nil, fmt.Errorf("console frame: %w: %d bytes, its header says %d (cut or mixed with other text)", ErrMalformed, len(msg), n)
	case crc32.ChecksumIEEE(msg) != uint32(sum):
		return nil, fmt.Errorf("console frame: %w: checksum mismatch (mixed with other text)", ErrMalformed)
	}
	return msg, nil
}

// FrameChunk is what a FrameScanner found next: text that is no frame, or
// a frame's message (Frame, its JSON) and the frame's size on the wire
// (its parts' lines included). Err is set for a frame that could not be
// decoded; the scanner goes on. A frame line that could not be decoded is
// also Text, prefix and all: what cut it (a kernel message printed in the
// middle of the frame, often the first line of a panic) is console text
// that must not be lost.
type FrameChunk struct {
	Text  []byte
	Frame []byte
	Size  int
	Err   error
}

// FrameScanner splits a console stream into text and frames. Text comes
// out as it arrives (held back only while it may be the start of a
// prefix), so that it can be logged as it is; frames, parts included, are
// bounded by MaxMessageSize.
type FrameScanner struct {
	r       io.Reader
	buf     []byte // bytes read and not yet returned
	frame   []byte // the frame line being gathered, after its prefix
	inFrame bool
	part    bool // the line being gathered is a part (FramePartPrefix)
	discard bool // the frame is too large: skip to its end
	parts   []byte
	partsN  int // the parts' size on the wire
	maxLine int // bounds a frame or part line after its prefix
	err     error
	rbuf    []byte
}

// NewFrameScanner returns a scanner reading r: the host's frames, whose
// lines may be a whole message's (FrameWriter).
func NewFrameScanner(r io.Reader) *FrameScanner {
	return &FrameScanner{r: r, rbuf: make([]byte, 32<<10), maxLine: maxFrameLine}
}

// NewGuestFrameScanner returns a scanner reading a guest's console, whose
// frame and part lines are at most MaxGuestFrameLine long.
func NewGuestFrameScanner(r io.Reader) *FrameScanner {
	s := NewFrameScanner(r)
	s.maxLine = MaxGuestFrameLine
	return s
}

// errLongLine is the error of a frame or part line over the bound.
func (s *FrameScanner) errLongLine() error {
	return fmt.Errorf("console frame: %w: a line of more than %d bytes", ErrTooLarge, s.maxLine)
}

// Next returns the next chunk, or the read error that ended the stream
// (io.EOF at its end) once everything before it was returned.
func (s *FrameScanner) Next() (FrameChunk, error) {
	for {
		if c, ok := s.step(); ok {
			return c, nil
		}
		if s.err != nil {
			if s.inFrame {
				s.inFrame = false
				c := FrameChunk{Size: len(FramePrefix) + len(s.frame), Err: fmt.Errorf("console frame: %w: cut by the end of the stream", ErrMalformed)}
				if !s.discard {
					c.Text = append([]byte(s.prefix()), s.frame...)
				}
				s.frame, s.discard, s.parts, s.partsN = nil, false, nil, 0
				return c, nil
			}
			if s.parts != nil {
				c := FrameChunk{Size: s.partsN, Err: fmt.Errorf("console frame: %w: a message's parts cut by the end of the stream", ErrMalformed)}
				s.parts, s.partsN = nil, 0
				return c, nil
			}
			if len(s.buf) > 0 {
				t := s.buf
				s.buf = nil
				return FrameChunk{Text: t}, nil
			}
			return FrameChunk{}, s.err
		}
		n, err := s.r.Read(s.rbuf)
		s.buf = append(s.buf, s.rbuf[:n]...)
		s.err = err
	}
}

// prefix is the prefix of the line being gathered.
func (s *FrameScanner) prefix() string {
	if s.part {
		return FramePartPrefix
	}
	return FramePrefix
}

// step returns a chunk from what was read, if there is one.
func (s *FrameScanner) step() (FrameChunk, bool) {
	for len(s.buf) > 0 {
		if s.inFrame {
			i := bytes.IndexByte(s.buf, '\n')
			if i < 0 {
				if !s.discard {
					s.frame = append(s.frame, s.buf...)
				}
				s.buf = s.buf[:0]
				if !s.discard && len(s.frame) > s.maxLine {
					s.discard, s.frame, s.parts, s.partsN = true, nil, nil, 0
					return FrameChunk{Size: s.maxLine, Err: s.errLongLine()}, true
				}
				return FrameChunk{}, false
			}
			line := s.buf[:i]
			s.buf = s.buf[i+1:]
			s.inFrame = false
			if s.discard {
				s.discard = false
				continue
			}
			body := append(s.frame, line...)
			s.frame = nil
			if len(body) > s.maxLine {
				s.parts, s.partsN = nil, 0
				return FrameChunk{Size: len(s.prefix()) + len(body) + 1, Err: s.errLongLine()}, true
			}
			if s.part {
				if c, ok := s.addPart(body); ok {
					return c, true
				}
				continue
			}
			c := FrameChunk{Size: s.partsN + len(FramePrefix) + len(body) + 1}
			parts := s.parts
			s.parts, s.partsN = nil, 0
			if len(body)+len(parts) > maxFrameLine {
				c.Err = fmt.Errorf("console frame: %w (more than %d bytes)", ErrTooLarge, MaxMessageSize)
				return c, true
			}
			if c.Frame, c.Err = parseFrame(body, parts); c.Err != nil {
				c.Frame = nil
				c.Text = append(append([]byte(FramePrefix), body...), '\n')
			}
			return c, true
		}
		i, part := indexPrefix(s.buf)
		switch {
		case i == 0:
			s.buf = s.buf[len(FramePrefix):]
			s.inFrame, s.part = true, part
			continue
		case i > 0:
			return s.text(i), true
		}
		// Hold back what may be the start of a prefix cut by the read.
		keep := 0
		for k := min(len(FramePrefix)-1, len(s.buf)); k > 0; k-- {
			if bytes.HasSuffix(s.buf, []byte(FramePrefix[:k])) || bytes.HasSuffix(s.buf, []byte(FramePartPrefix[:k])) {
				keep = k
				break
			}
		}
		if keep == len(s.buf) {
			return FrameChunk{}, false
		}
		return s.text(len(s.buf) - keep), true
	}
	return FrameChunk{}, false
}

// addPart takes a part line's body: kept for the frame line to come, or,
// when it cannot be one, a chunk with the error and the line as text.
func (s *FrameScanner) addPart(body []byte) (FrameChunk, bool) {
	body = bytes.TrimRight(body, "\r")
	size := len(FramePartPrefix) + len(body) + 1
	switch {
	case len(body) == 0 || len(body)%4 != 0 || !isBase64(body):
		s.parts, s.partsN = nil, 0
		return FrameChunk{Size: size, Text: append(append([]byte(FramePartPrefix), body...), '\n'),
			Err: fmt.Errorf("console frame: %w: a part cut or mixed with other text", ErrMalformed)}, true
	case len(s.parts)+len(body) > maxFrameLine:
		s.parts, s.partsN = nil, 0
		return FrameChunk{Size: size, Err: fmt.Errorf("console frame: %w (more than %d bytes)", ErrTooLarge, MaxMessageSize)}, true
	}
	if s.parts == nil {
		s.parts = make([]byte, 0, 4*len(body))
	}
	s.parts = append(s.parts, body...)
	s.partsN += size
	return FrameChunk{}, false
}

// indexPrefix returns where the first frame or part prefix in b starts,
// and whether it is a part's, or -1.
func indexPrefix(b []byte) (int, bool) {
	common := FramePrefix[:len(FramePrefix)-2] // "=vmrunner1"
	off := 0
	for {
		i := bytes.Index(b[off:], []byte(common))
		if i < 0 {
			return -1, false
		}
		i += off
		rest := b[i+len(common):]
		if len(rest) < 2 {
			// Cut by the read: the caller holds it back.
			return -1, false
		}
		if rest[1] == ' ' && (rest[0] == '=' || rest[0] == '+') {
			return i, rest[0] == '+'
		}
		off = i + 1
	}
}

// text returns the first n bytes of buf as text.
func (s *FrameScanner) text(n int) FrameChunk {
	t := append([]byte(nil), s.buf[:n]...)
	s.buf = append(s.buf[:0], s.buf[n:]...)
	return FrameChunk{Text: t}
}

// FrameWriter frames what is written to it: each Write is one message's
// JSON line (an Encoder writes one per message) and goes out as one frame
// in one write.
type FrameWriter struct{ W io.Writer }

func (f FrameWriter) Write(p []byte) (int, error) {
	if _, err := f.W.Write(AppendFrame(nil, bytes.TrimSuffix(p, []byte("\n")))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// FrameReader reads the messages framed in a console stream as the JSON
// lines a Decoder reads, skipping all other text. A frame that cannot be
// decoded ends the stream with its error.
type FrameReader struct {
	s       *FrameScanner
	pending []byte
}

// NewFrameReader returns a FrameReader reading r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{s: NewFrameScanner(r)} }

func (f *FrameReader) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		c, err := f.s.Next()
		if err != nil {
			return 0, err
		}
		if c.Err != nil {
			return 0, c.Err
		}
		if c.Frame != nil {
			f.pending = append(c.Frame, '\n')
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}
