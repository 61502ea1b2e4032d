package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"

	"github.com/vmrunner/vmrunner/internal/text"
)

// Console limits: a kernel that floods its console must not exhaust the
// host's disk or memory.
const (
	maxConsoleBytes = 64 << 20 // console.log is cut after this
	maxConsoleLine  = 4096     // longer lines are split for scanning
	consoleTail     = 200      // lines kept in memory for excerpts
	maxSplats       = 32
)

// splatPatterns maps console substrings to splat kinds, most severe first.
var splatPatterns = []struct{ substr, kind string }{
	{"Kernel panic - not syncing", "panic"},
	{"Oops:", "oops"},
	{"BUG:", "bug"},
	{"WARNING:", "warning"},
	{"rcu: INFO:", "rcu-stall"},
	{"detected stalls on CPUs", "rcu-stall"},
	{"blocked for more than", "hung-task"},
}

// Console copies the guest's serial Console to a file, scans it for splats and
// keeps the last lines for error excerpts.
type Console struct {
	mu     sync.Mutex
	tail   []string
	splats []results.Splat
	cut    bool
	// sysrq holds the SysRq header lines seen ("sysrq: Show State"),
	// which a long dump would push out of the tail, and last when the
	// last line came: the host waits for one dump to end before asking
	// for the next.
	sysrq []string
	last  time.Time
}

// maxSysrqLines bounds console.sysrq.
const maxSysrqLines = 32

// Capture reads r until EOF. It always drains r, even after the file limit is
// hit, so a chatty guest never blocks on a full pipe.
func (c *Console) Capture(r io.Reader, path string) error {
	f, err := os.Create(path)
	if err != nil {
		_, _ = io.Copy(io.Discard, r)
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(r, maxConsoleLine)
	written := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if written < maxConsoleBytes {
				n, _ := f.Write(line)
				written += n
			} else if !c.cut {
				_, _ = f.WriteString("\n[vmrunner: console.log cut at 64 MiB]\n")
				c.mu.Lock()
				c.cut = true
				c.mu.Unlock()
			}
			c.scan(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (c *Console) scan(line []byte) {
	// Console text is the guest's: it reaches records and terminals only
	// sanitised.
	ln := text.Sanitize(brokenFrameText(strings.TrimRight(string(line), "\r\n")))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = time.Now()
	if strings.Contains(ln, "sysrq: ") && len(c.sysrq) < maxSysrqLines {
		c.sysrq = append(c.sysrq, ln)
	}
	c.tail = append(c.tail, ln)
	if len(c.tail) > consoleTail {
		c.tail = c.tail[len(c.tail)-consoleTail:]
	}
	if len(c.splats) >= maxSplats {
		return
	}
	for _, p := range splatPatterns {
		if strings.Contains(ln, p.substr) {
			c.splats = append(c.splats, results.Splat{Kind: p.kind, Line: strings.TrimSpace(ln)})
			return
		}
	}
}

// brokenFrameText returns the kernel's text of a console line that holds a
// frame cut by it (protocol.FrameScanner keeps such a line as text): the
// frame's part, up to the first "[" (a printk timestamp; base64 has no
// "["), is left out, so that excerpts and messages quote the kernel, not
// the frame. A line without that shape is returned as it is.
func brokenFrameText(ln string) string {
	before, frame, ok := strings.Cut(ln, protocol.FramePrefix)
	if !ok {
		if before, frame, ok = strings.Cut(ln, protocol.FramePartPrefix); !ok {
			return ln
		}
	}
	i := strings.IndexByte(frame, '[')
	if i < 0 {
		return ln
	}
	return before + frame[i:]
}

// ConsoleText is what a console showed: its last lines, sanitised, and the
// splats seen on all of it.
type ConsoleText struct {
	Tail   []string
	Splats []results.Splat
}

// Snapshot returns what the console showed so far.
func (c *Console) Snapshot() ConsoleText {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ConsoleText{Tail: append([]string(nil), c.tail...), Splats: append([]results.Splat(nil), c.splats...)}
}

// Splats returns the splats seen so far.
func (c *Console) Splats() []results.Splat { return c.Snapshot().Splats }

// HasKind reports whether a splat of kind was seen.
func (c *Console) HasKind(kind string) bool { return c.Snapshot().HasKind(kind) }

// Contains reports whether a line kept in the tail Contains s.
func (c *Console) Contains(s string) bool { return c.Snapshot().Line(s) != "" }

// Excerpt returns the last n console lines.
func (c *Console) Excerpt(n int) string { return c.Snapshot().Excerpt(n) }

// sawSysrq reports whether a SysRq header line containing s was seen.
func (c *Console) sawSysrq(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.sysrq {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// waitSysrqOutput waits for at most d until the SysRq header containing
// header was seen and the console then stayed quiet for idle: the
// kernel's answer printed whole. It reports whether the header came.
func (c *Console) waitSysrqOutput(header string, idle, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c.sawSysrq(header) {
			c.mu.Lock()
			quiet := time.Since(c.last) >= idle
			c.mu.Unlock()
			if quiet {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c.sawSysrq(header)
}

func (t ConsoleText) HasKind(kind string) bool {
	for _, s := range t.Splats {
		if s.Kind == kind {
			return true
		}
	}
	return false
}

// Splat returns the line of the first Splat of kind, or "".
func (t ConsoleText) Splat(kind string) string {
	for _, s := range t.Splats {
		if s.Kind == kind {
			return s.Line
		}
	}
	return ""
}

// Line returns the last Line kept in the tail that contains s, or "".
func (t ConsoleText) Line(s string) string {
	for i := len(t.Tail) - 1; i >= 0; i-- {
		if strings.Contains(t.Tail[i], s) {
			return strings.TrimSpace(t.Tail[i])
		}
	}
	return ""
}

// Excerpt returns the last n lines.
func (t ConsoleText) Excerpt(n int) string {
	tail := t.Tail
	if len(tail) > n {
		tail = tail[len(tail)-n:]
	}
	return strings.Join(tail, "\n")
}

// Telnet bytes. The console chardev runs in telnet mode because that is how
// QEMU turns "IAC BREAK" from the host into a serial break, which the guest's
// serial driver turns into a magic SysRq (a task dump of a hung guest).
const (
	telnetIAC   = 0xff
	telnetBreak = 0xf3
	telnetWill  = 0xfb
	telnetDont  = 0xfe
)

// TelnetFilter strips telnet negotiation from what QEMU sends, keeping the
// guest's bytes. It keeps state across reads.
type TelnetFilter struct {
	r     io.Reader
	state int // 0 data, 1 after IAC, 2 after IAC WILL/WONT/DO/DONT
}

// NewTelnetFilter reads r, QEMU's telnet-mode console socket, without the
// telnet negotiation bytes.
func NewTelnetFilter(r io.Reader) *TelnetFilter { return &TelnetFilter{r: r} }

func (t *TelnetFilter) Read(p []byte) (int, error) {
	for {
		n, err := t.r.Read(p)
		out := 0
		for _, b := range p[:n] {
			switch t.state {
			case 0:
				if b == telnetIAC {
					t.state = 1
					continue
				}
				p[out] = b
				out++
			case 1:
				switch {
				case b == telnetIAC: // escaped 0xff
					p[out] = b
					out++
					t.state = 0
				case b >= telnetWill && b <= telnetDont:
					t.state = 2
				default:
					t.state = 0
				}
			case 2:
				t.state = 0
			}
		}
		if out > 0 || err != nil {
			return out, err
		}
	}
}

// sysrqKeys are the magic SysRq keys the host sends a stuck guest, in
// order, each with the header line the kernel prints when it acts on it.
// 7 raises the console's log level (on the console channel the agent set
// it to 1, and the dumps print at 6); w and l are short, t (every task)
// is long and comes last.
var sysrqKeys = []struct {
	key    byte
	header string
}{
	{'7', "sysrq: Loglevel set to 7"},
	{'w', "sysrq: Show Blocked State"},
	{'l', "sysrq: Show backtrace of all active CPUs"},
	{'t', "sysrq: Show State"},
}

// sysrq sends one magic SysRq key through a serial break.
func sysrq(w io.Writer, key byte) error {
	if _, err := w.Write([]byte{telnetIAC, telnetBreak}); err != nil {
		return fmt.Errorf("send break: %w", err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := w.Write([]byte{key}); err != nil {
		return fmt.Errorf("send sysrq %c: %w", key, err)
	}
	return nil
}

// AskDumps asks the guest kernel for diagnostics through serial breaks and
// magic SysRq keys (sysrqKeys), one at a time, each once the kernel's
// answer to the one before has been printed: a break sent while the kernel
// prints a long dump can be lost. raise says whether to send 7 first. It
// returns whether the log level was raised and whether the task dump (t)
// was printed.
func AskDumps(w io.Writer, con *Console, raise bool) (raised, dumped bool, err error) {
	for _, k := range sysrqKeys {
		if k.key == '7' && !raise {
			continue
		}
		if err := sysrq(w, k.key); err != nil {
			return raised, dumped, err
		}
		seen := con.waitSysrqOutput(k.header, 300*time.Millisecond, 5*time.Second)
		switch k.key {
		case '7':
			raised = seen
		case 't':
			dumped = seen
		}
	}
	return raised, dumped, nil
}
