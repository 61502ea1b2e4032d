package vmrunner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestConsoleSplats(t *testing.T) {
	in := strings.Join([]string{
		"[    0.000000] Linux version 6.1.0",
		"[    1.000000] WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2",
		"[    2.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"[    2.100000] Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"[    3.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
		"[    4.000000] INFO: task kworker:1 blocked for more than 120 seconds.",
		"[    5.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
	}, "\n") + "\n"
	dir := t.TempDir()
	var c console
	if err := c.capture(strings.NewReader(in), filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range c.Splats() {
		kinds = append(kinds, s.Kind)
	}
	want := "warning bug oops rcu-stall hung-task panic"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("splat kinds = %q, want %q", got, want)
	}
	if !c.hasKind("panic") || c.hasKind("nothing") {
		t.Errorf("hasKind wrong")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	if string(b) != in {
		t.Errorf("console.log differs from input")
	}
	if ex := c.Excerpt(2); !strings.HasSuffix(ex, "exitcode=0x00000100") || strings.Count(ex, "\n") != 1 {
		t.Errorf("Excerpt(2) = %q", ex)
	}
}

func TestConsoleLongLinesAndLimit(t *testing.T) {
	// One enormous line with no newline must neither block nor be kept whole.
	long := strings.Repeat("x", 3*maxConsoleLine) + "Kernel panic - not syncing: late\n"
	var c console
	if err := c.capture(strings.NewReader(long), filepath.Join(t.TempDir(), "console.log")); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(c.Excerpt(10), "\n") {
		if len(l) > maxConsoleLine {
			t.Fatalf("kept a %d-byte line", len(l))
		}
	}
	if !c.hasKind("panic") {
		t.Errorf("panic at the end of a long line not seen")
	}
}

// The console's frames go to the session's channel and out of console.log;
// the text around them stays; a damaged frame arrives as an error, never
// as a message, and stays in console.log as text (what cut it is the
// kernel's: a panic line there is seen).
func TestConsoleFrames(t *testing.T) {
	ready := []byte(`{"v":1,"type":"ready","ready":{"agent":"dev"}}`)
	done := []byte(`{"v":1,"type":"done","done":{"results":0}}`)
	damaged := protocol.FramePrefix + "5 00000000 eHg=\n" // 2 bytes, not 5: cut short
	// A frame with the kernel's panic line printed into its middle.
	frame := string(protocol.AppendFrame(nil, done))
	panicked := frame[:30] + "[ 2.5] Kernel panic - not syncing: Attempted to kill init!\n" + frame[30:]
	stream := "[    1.0] Run /init as init process\n" + string(protocol.AppendFrame(nil, ready)) +
		"vmrunner-agent: console channel open\n[ 2.0] partial" + string(protocol.AppendFrame(nil, done)) + damaged + panicked + "[ 3.0] reboot: Power down\n"
	msgs := make(chan guestMsg, 10)
	stop := make(chan struct{})
	c := &console{}
	path := filepath.Join(t.TempDir(), "console.log")
	if err := c.capture(&consoleFrames{s: protocol.NewFrameScanner(strings.NewReader(stream)), stop: stop, msgs: msgs}, path); err != nil {
		t.Fatal(err)
	}
	close(msgs)
	var got []string
	for gm := range msgs {
		if gm.err != nil {
			got = append(got, "error")
			continue
		}
		got = append(got, string(gm.m.Type))
	}
	if want := "ready done error error"; strings.Join(got, " ") != want {
		t.Errorf("messages %q, want %q", got, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[    1.0] Run /init as init process\nvmrunner-agent: console channel open\n[ 2.0] partial" + damaged + panicked + "[ 3.0] reboot: Power down\n"; string(b) != want {
		t.Errorf("console.log %q, want %q", b, want)
	}
	if !c.hasKind("panic") || !c.contains("Attempted to kill init") {
		t.Errorf("the panic printed into a frame was not seen: %v", c.Splats())
	}
	// Excerpts and splats quote the kernel's line, not the frame it cut.
	if s := c.Splats(); len(s) != 1 || s[0].Line != "[ 2.5] Kernel panic - not syncing: Attempted to kill init!" {
		t.Errorf("splats %+v, want the panic line alone", s)
	}
}

// sysrqGuest plays a guest kernel's serial line: each SysRq key after a
// break is answered with its header line on the console, and the keys
// are kept in the order they came.
type sysrqGuest struct {
	con     *console
	headers map[byte]string
	keys    []byte
}

func (g *sysrqGuest) Write(p []byte) (int, error) {
	if len(p) == 1 {
		g.keys = append(g.keys, p[0])
		if h, ok := g.headers[p[0]]; ok {
			g.con.scan([]byte("[ 20.1] " + h + "\n"))
		}
	}
	return len(p), nil
}

// TestAskDumps: the keys go one at a time, 7 first only when asked (the
// console channel's quiet console), t last; what the kernel printed says
// whether the log level was raised and the task dump printed.
func TestAskDumps(t *testing.T) {
	headers := map[byte]string{}
	for _, k := range sysrqKeys {
		headers[k.key] = k.header
	}
	for _, raise := range []bool{false, true} {
		g := &sysrqGuest{con: &console{}, headers: headers}
		raised, dumped, err := askDumps(g, g.con, raise)
		if err != nil {
			t.Fatal(err)
		}
		want := "wlt"
		if raise {
			want = "7wlt"
		}
		if string(g.keys) != want || raised != raise || !dumped {
			t.Errorf("raise %v: keys %q raised %v dumped %v, want %q %v true", raise, g.keys, raised, dumped, want, raise)
		}
	}
}
