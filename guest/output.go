package guest

import (
	"fmt"

	"github.com/vmrunner/vmrunner/protocol"
)

// output sends a piece of a program's output (the test check) on the
// check's stream, as soon as it was read. Like results, nothing goes out
// once the check is over.
func (s *stream) output(o protocol.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStreamClosed
	}
	if err := s.enc.Send(protocol.Message{Type: protocol.TypeOutput, Output: &o}); err != nil {
		return fmt.Errorf("send output: %w", err)
	}
	return nil
}
