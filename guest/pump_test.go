package guest

import (
	"io"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// Writes of one stream close together travel in one message, and nothing
// is lost or reordered within a stream. (Order across the two streams is
// the order the agent read them: TestRunProgramStreamsInOrder.)
func TestPumpCoalesces(t *testing.T) {
	var c collector
	p := newPump("test/x", protocol.DefaultMaxOutput, c.send)
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	p.read(protocol.Stdout, outR)
	p.read(protocol.Stderr, errR)
	var want strings.Builder
	for i := range 50 {
		s := strings.Repeat(string(rune('a'+i%26)), i%7+1)
		want.WriteString(s)
		_, _ = io.WriteString(outW, s)
	}
	_, _ = io.WriteString(errW, "E")
	outW.Close()
	errW.Close()
	p.wait()
	if len(c.out) > 3 {
		t.Errorf("%d messages for 51 writes within a few ms; want at most 3", len(c.out))
	}
	if c.text(protocol.Stdout) != want.String() || c.text(protocol.Stderr) != "E" {
		t.Errorf("stdout %q, stderr %q", c.text(protocol.Stdout), c.text(protocol.Stderr))
	}
}
