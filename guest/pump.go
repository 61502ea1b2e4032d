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
// read and counted, so the program never blocks on a full pipe. With max
// protocol.NoOutputLimit everything is sent: send's pace, the channel's,
// holds the program back once the pipes and the pump's queue are full.
type pump struct {
	check string
	max   int64
	send  func(protocol.Output) error // nil: count only

	chunks  chan chunk
	readers sync.WaitGroup
	done    chan struct{}

	mu       sync.Mutex
	active   int       // readers not ended
	inRead   int       // readers waiting on their pipe
	lastRead time.Time // when a reader last began to wait on its pipe

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
	p.mu.Lock()
	p.active++
	p.mu.Unlock()
	go func() {
		defer p.readers.Done()
		defer func() {
			p.mu.Lock()
			p.active--
			p.mu.Unlock()
		}()
		for {
			buf := make([]byte, readSize)
			p.mu.Lock()
			p.inRead++
			p.lastRead = time.Now()
			p.mu.Unlock()
			n, err := r.Read(buf)
			p.mu.Lock()
			p.inRead--
			p.mu.Unlock()
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

// idle is how long every reader still running has been waiting on an
// empty pipe: 0 while one of them holds bytes the sender has not taken
// yet, however long the channel keeps it waiting.
func (p *pump) idle() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inRead < p.active {
		return 0
	}
	return time.Since(p.lastRead)
}

// waitIdle is wait for a program that has exited: what it left behind
// may hold its pipes open, so once no reader has had a byte for grace,
// cut is called (it closes the pipes' read ends) and the readers end.
// Output still queued or in flight is sent whole, however slowly the
// channel takes it.
func (p *pump) waitIdle(grace time.Duration, cut func()) {
	waited := make(chan struct{})
	go func() {
		p.wait()
		close(waited)
	}()
	tick := time.NewTicker(grace / 10)
	defer tick.Stop()
	for {
		select {
		case <-waited:
			return
		case <-tick.C:
			if p.idle() >= grace {
				cut()
				<-waited
				return
			}
		}
	}
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
		if room := p.max - p.sent; p.max != protocol.NoOutputLimit && int64(len(data)) > room {
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
