package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vmrunner/vmrunner/internal/text"
)

// Errors returned by Decoder.Next. Match them with errors.Is.
var (
	ErrTooLarge   = errors.New("message exceeds size limit")
	ErrMalformed  = errors.New("malformed message")
	ErrBadVersion = errors.New("unsupported protocol version")
)

// Encoder writes framed messages. It is safe for concurrent use.
type Encoder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Send frames and writes m, filling in the version. A file message's data
// follows its line raw (see FileChunk).
func (e *Encoder) Send(m Message) error {
	if m.Type == TypeFile && m.File != nil {
		c := *m.File
		c.Size = len(c.Data)
		m.File = &c
	}
	b, err := frame(m)
	if err != nil {
		return err
	}
	if m.Type == TypeFile && m.File != nil {
		// The data, then a newline: the stream stays one of lines (the
		// Decoder skips the blank one), and a FrameWriter, which takes
		// one newline off each write, frames the data whole.
		b = append(append(b, m.File.Data...), '\n')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", m.Type, err)
	}
	return nil
}

// frame encodes m as one line, newline included. A line over
// MaxMessageSize is returned with a wrapped ErrTooLarge.
func frame(m Message) ([]byte, error) {
	m.V = Version
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type, err)
	}
	b = append(b, '\n')
	if len(b) > MaxMessageSize {
		return b, fmt.Errorf("encode %s: %w (%d bytes)", m.Type, ErrTooLarge, len(b))
	}
	return b, nil
}

// FramedSize returns the size of m as Send would write it, newline
// included, with a wrapped ErrTooLarge when it is over MaxMessageSize: a
// sender can check a message before it has a connection to send it on.
func FramedSize(m Message) (int, error) {
	b, err := frame(m)
	return len(b), err
}

// Decoder reads framed messages, bounding and validating each one.
type Decoder struct {
	r *bufio.Reader
	// FileData, when set, is asked where a file message's data goes: a
	// buffer of exactly c.Size bytes (the file's own memory, so that the
	// data is copied once), or nil for one of the Decoder's.
	FileData func(c *FileChunk) []byte
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next reads the next message, and a file message's data after it. Blank
// lines are skipped. It returns io.EOF at a clean end of stream and a
// wrapped ErrTooLarge, ErrMalformed or ErrBadVersion for input it will not
// accept; after ErrTooLarge the stream is unusable.
func (d *Decoder) Next() (Message, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			return Message{}, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		m, err := Parse(line)
		if err != nil || m.Type != TypeFile {
			return m, err
		}
		// Parse bounded the size.
		if d.FileData != nil {
			if dst := d.FileData(m.File); len(dst) == m.File.Size {
				m.File.Data = dst
			}
		}
		if m.File.Data == nil {
			buf := chunkPool.Get().(*[]byte)
			m.File.Data, m.File.pooled = (*buf)[:m.File.Size], buf
		}
		if _, err := io.ReadFull(d.r, m.File.Data); err != nil {
			m.File.Release()
			return Message{}, fmt.Errorf("read file data: %w: %v", ErrMalformed, err)
		}
		return m, nil
	}
}

func (d *Decoder) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := d.r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxMessageSize {
			return nil, fmt.Errorf("read message: %w (more than %d bytes)", ErrTooLarge, MaxMessageSize)
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, fmt.Errorf("read message: %w: truncated at end of stream", ErrMalformed)
		default:
			return nil, err
		}
	}
}

// Parse decodes and validates one message (without its newline).
func Parse(line []byte) (Message, error) {
	var m Message
	if len(line) > MaxMessageSize {
		return m, fmt.Errorf("parse message: %w", ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("parse message: %w: %v", ErrMalformed, err)
	}
	if m.V != Version {
		return Message{}, fmt.Errorf("parse message: %w: %d (want %d)", ErrBadVersion, m.V, Version)
	}
	if err := m.validate(); err != nil {
		return Message{}, fmt.Errorf("parse %s message: %w: %v", m.Type, ErrMalformed, err)
	}
	return m, nil
}

func (m Message) validate() error {
	set := 0
	for _, p := range []bool{m.Ready != nil, m.Plan != nil, m.File != nil, m.Prepared != nil, m.CheckStart != nil, m.Log != nil, m.Result != nil, m.Artifact != nil, m.Output != nil, m.Done != nil} {
		if p {
			set++
		}
	}
	if set > 1 {
		return errors.New("more than one payload")
	}
	var ok bool
	switch m.Type {
	case TypeReady:
		if m.Ready == nil {
			return errors.New("missing ready payload")
		}
		if len(m.Ready.Notes) > MaxNotes {
			return fmt.Errorf("%d notes, more than %d", len(m.Ready.Notes), MaxNotes)
		}
		for _, n := range m.Ready.Notes {
			if len(n.Text) > MaxNoteBytes || len(n.Level) > 16 {
				return fmt.Errorf("note of %d bytes, more than %d", len(n.Text), MaxNoteBytes)
			}
		}
		ok = true
	case TypePlan:
		if m.Plan == nil {
			return errors.New("missing plan payload")
		}
		if m.Plan.Host != nil {
			if err := m.Plan.Host.validate(); err != nil {
				return err
			}
		}
		if err := validateFiles(m.Plan.Files, m.Plan.Dirs); err != nil {
			return err
		}
		ok = true
	case TypeFile:
		if m.File == nil {
			return errors.New("missing file payload")
		}
		if err := m.File.validate(); err != nil {
			return err
		}
		ok = true
	case TypePrepared:
		if m.Prepared == nil {
			return errors.New("missing prepared payload")
		}
		if err := m.Prepared.validate(); err != nil {
			return err
		}
		ok = true
	case TypeCheckStart:
		if m.CheckStart == nil {
			return errors.New("missing check_start payload")
		}
		if !ValidCheckName(m.CheckStart.Check) {
			return fmt.Errorf("invalid check name %q", text.Truncate(m.CheckStart.Check, 64))
		}
		ok = true
	case TypeLog:
		ok = m.Log != nil
	case TypeResult:
		if m.Result == nil {
			return errors.New("missing result payload")
		}
		if !ValidCheckName(m.Result.Check) {
			return fmt.Errorf("invalid check name %q", text.Truncate(m.Result.Check, 64))
		}
		if !m.Result.Status.Valid() {
			return fmt.Errorf("invalid status %q", m.Result.Status)
		}
		if k := m.Result.ErrorKind; k != "" && k != ErrorKindLoad {
			return fmt.Errorf("invalid error kind %q", text.Truncate(k, 32))
		}
		if r := m.Result.Reason; r != "" && !r.Valid() {
			return fmt.Errorf("invalid reason %q", text.Truncate(string(r), 32))
		}
		if len(m.Result.ReasonDetail) > MaxReasonDetail {
			return fmt.Errorf("reason detail of %d bytes: at most %d", len(m.Result.ReasonDetail), MaxReasonDetail)
		}
		ok = true
	case TypeArtifact:
		if m.Artifact == nil {
			return errors.New("missing artifact payload")
		}
		if !ValidCheckName(m.Artifact.Check) {
			return fmt.Errorf("invalid check name %q", text.Truncate(m.Artifact.Check, 64))
		}
		if !ValidArtifactName(m.Artifact.Name) {
			return fmt.Errorf("invalid artifact name %q", text.Truncate(m.Artifact.Name, 64))
		}
		ok = true
	case TypeOutput:
		if m.Output == nil {
			return errors.New("missing output payload")
		}
		if err := m.Output.validate(); err != nil {
			return err
		}
		ok = true
	case TypeDone:
		ok = m.Done != nil
	case TypeBye:
		ok = set == 0
	default:
		return fmt.Errorf("unknown type %q", m.Type)
	}
	if !ok {
		return errors.New("payload does not match type")
	}
	return nil
}
