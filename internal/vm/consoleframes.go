package vm

import "github.com/vmrunner/vmrunner/protocol"

// consoleFrames reads the console's text for capture and hands the guest's
// messages framed in it (protocol.FramePrefix) to msgs, parsed, until stop
// is closed; after that they are dropped, the text still read.
type consoleFrames struct {
	s    *protocol.FrameScanner
	stop <-chan struct{}
	msgs chan<- guestMsg
	text []byte
}

func (c *consoleFrames) Read(p []byte) (int, error) {
	for len(c.text) == 0 {
		ch, err := c.s.Next()
		if err != nil {
			return 0, err
		}
		c.text = ch.Text
		if ch.Frame == nil && ch.Err == nil {
			continue
		}
		gm := guestMsg{size: ch.Size, err: ch.Err}
		if gm.err == nil {
			gm.m, gm.err = protocol.Parse(ch.Frame)
		}
		select {
		case c.msgs <- gm:
		case <-c.stop:
		}
	}
	n := copy(p, c.text)
	c.text = c.text[n:]
	return n, nil
}
