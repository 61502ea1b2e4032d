package guest

import (
	"io"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// pump reads a program's stdout and stderr and passes what it reads to send
// in the order it was read, within flushDelay: what one stream writes in
// that time travels together (up to protocol.MaxOutputChunk), and output of
// the other stream sends it at once, so that order is kept. So a chatty
// program costs at most one message per stream every flushDelay, and a
// quiet one is seen as it writes. At most max bytes are sent; the rest is
// read and counted, so the program never blocks on a full pipe.
type pump struct {
	check string
	max   int64
	send  func(protocol.Output) error // nil: count only

	chunks  chan chunk
	readers sync.WaitGroup
	done    chan struct{}

	// Written by the sender goroutine; read after wait.
	counts  map[protocol.Stream]int64
	sent    int64
	dropped int64
	sendErr error
}

type chunk struct {
	stream protocol.Stream
	data   []byte
}

const readSize = 32 << 10

// flushDelay is how long output waits for more of the same stream.
const flushDelay = 20 * time.Millisecond

func newPump(check string, max int64, send func(protocol.Output) error) *pump {
	p := &pump{check: check, max: max, send: send, chunks: make(chan chunk, 64), done: make(chan struct{}),
		counts: map[protocol.Stream]int64{}}
	go p.sender()
	return p
}

// read copies r into the pump until EOF or an error.
func (p *pump) read(stream protocol.Stream, r io.Reader) {
	p.readers.Add(1)
	go func() {
		defer p.readers.Done()
		for {
			buf := make([]byte, readSize)
			n, err := r.Read(buf)
			if n > 0 {
				p.chunks <- chunk{stream, buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
}

// wait returns once every reader has ended and everything read is sent.
func (p *pump) wait() {
	p.readers.Wait()
	close(p.chunks)
	<-p.done
}

func (p *pump) sender() {
	defer close(p.done)
	var pending *chunk
	for {
		var c chunk
		if pending != nil {
			c, pending = *pending, nil
		} else {
			var ok bool
			if c, ok = <-p.chunks; !ok {
				return
			}
		}
		data := c.data
		// Take what the same stream writes within flushDelay.
		timer := time.NewTimer(flushDelay)
	more:
		for len(data) < protocol.MaxOutputChunk {
			select {
			case n, ok := <-p.chunks:
				if !ok {
					break more
				}
				if n.stream != c.stream || len(data)+len(n.data) > protocol.MaxOutputChunk {
					pending = &n
					break more
				}
				data = append(data, n.data...)
			case <-timer.C:
				break more
			}
		}
		timer.Stop()
		p.counts[c.stream] += int64(len(data))
		if room := p.max - p.sent; int64(len(data)) > room {
			p.dropped += int64(len(data)) - max(room, 0)
			data = data[:max(room, 0)]
		}
		if len(data) == 0 || p.send == nil || p.sendErr != nil {
			continue
		}
		p.sent += int64(len(data))
		if err := p.send(protocol.Output{Check: p.check, Stream: c.stream, Data: data}); err != nil {
			p.sendErr = err
		}
	}
}
