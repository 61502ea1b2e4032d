package protocol

import (
	"errors"
	"fmt"

	"github.com/vmrunner/vmrunner/internal/text"
)

// Stream names one of a program's output streams.
type Stream string

// The streams of Output.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// MaxOutputChunk bounds the data of one output message: base64 makes it a
// third larger, well inside MaxMessageSize.
const MaxOutputChunk = 64 << 10

// Output is a piece of what a program run by a check (the test check,
// vmrunner exec) wrote on one stream, sent as soon as the agent read it. The
// pieces of both streams arrive in the order the agent read them; Data is the
// bytes as written (base64 in JSON), not text.
type Output struct {
	Check  string `json:"check"` // the result it belongs to: test/<name>
	Stream Stream `json:"stream"`
	Data   []byte `json:"data"`
}

func (o *Output) validate() error {
	switch {
	case o.Check == "":
		return errors.New("output without check name")
	case o.Stream != Stdout && o.Stream != Stderr:
		return fmt.Errorf("invalid stream %q", text.Truncate(string(o.Stream), 16))
	case len(o.Data) == 0:
		return errors.New("empty output")
	case len(o.Data) > MaxOutputChunk:
		return fmt.Errorf("output of %d bytes, more than %d", len(o.Data), MaxOutputChunk)
	}
	return nil
}
