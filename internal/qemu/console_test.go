package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	var c Console
	if err := c.Capture(strings.NewReader(in), filepath.Join(dir, "console.log")); err != nil {
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
	if !c.HasKind("panic") || c.HasKind("nothing") {
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
	var c Console
	if err := c.Capture(strings.NewReader(long), filepath.Join(t.TempDir(), "console.log")); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(c.Excerpt(10), "\n") {
		if len(l) > maxConsoleLine {
			t.Fatalf("kept a %d-byte line", len(l))
		}
	}
	if !c.HasKind("panic") {
		t.Errorf("panic at the end of a long line not seen")
	}
}

// sysrqGuest plays a guest kernel's serial line: each SysRq key after a
// break is answered with its header line on the console, and the keys
// are kept in the order they came.
type sysrqGuest struct {
	con     *Console
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
		g := &sysrqGuest{con: &Console{}, headers: headers}
		raised, dumped, err := AskDumps(g, g.con, raise)
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
