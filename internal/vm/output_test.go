package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

var outputPlan = protocol.Plan{Checks: []protocol.CheckSpec{
	{Name: "btf", Timeout: protocol.Duration(time.Minute)},
	{Name: "test", Timeout: protocol.Duration(time.Minute)},
}}

func output(g *fakeGuest, check string, s protocol.Stream, data string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeOutput, Output: &protocol.Output{Check: check, Stream: s, Data: []byte(data)}})
}

// A program's output is saved as it arrives, in order, raw, both streams
// together and each alone, and passed on live.
func TestSessionOutput(t *testing.T) {
	dir := t.TempDir()
	s := newSession(outputPlan, dir, defaultSessionLimits)
	var live []string
	s.outs.live = func(o protocol.Output) { live = append(live, string(o.Stream)+":"+string(o.Data)) }
	g := new(fakeGuest).ready().start("btf").result("btf", protocol.StatusPass, "").start("test")
	output(g, "test/p.test", protocol.Stdout, "out 1\n")
	output(g, "test/p.test", protocol.Stderr, "err \x1b[31mred\x1b[0m\n")
	output(g, "test/p.test", protocol.Stdout, "out 2\n")
	g.result("test/p.test", protocol.StatusPass, "exit status 0").done(2)
	if err := play(t, s, g); err != nil {
		t.Fatal(err)
	}
	s.close()
	for name, want := range map[string]string{
		"output.log": "out 1\nerr \x1b[31mred\x1b[0m\nout 2\n",
		"stdout.log": "out 1\nout 2\n",
		"stderr.log": "err \x1b[31mred\x1b[0m\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, "test", "p.test", name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want %q", name, b, err, want)
		}
	}
	if strings.Join(live, "|") != "stdout:out 1\n|stderr:err \x1b[31mred\x1b[0m\n|stdout:out 2\n" {
		t.Errorf("live %q", live)
	}
	if got := s.Artifacts()["test/p.test"]; len(got) != 3 {
		t.Errorf("artifacts %v", got)
	}
}

// Output messages have their own bound, and their bytes none (each is
// passed on as it comes); output for a check not running stops the VM.
func TestSessionOutputLimits(t *testing.T) {
	limits := defaultSessionLimits
	limits.Messages, limits.OutputMessages, limits.Bytes = 20, 50, 2<<10
	chatty := func(n int) *fakeGuest {
		g := new(fakeGuest).ready().start("test")
		for range n {
			output(g, "test/p.test", protocol.Stdout, "line\n")
		}
		return g
	}
	for _, tc := range []struct {
		name  string
		guest *fakeGuest
		want  string
	}{
		{"more output than other messages, and more bytes", chatty(40), ""},
		{"too many output messages", chatty(60), "more than 50 output messages"},
		{"output of another check", output(new(fakeGuest).ready().start("btf"), "test/p.test", protocol.Stdout, "x"), "output for check test/p.test while the guest runs"},
		{"output before its check", output(new(fakeGuest).ready(), "test/p.test", protocol.Stdout, "x"), "while the guest runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := play(t, newSession(outputPlan, t.TempDir(), limits), tc.guest)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Past the bound of the saved copy, output passed on live (vmrunner exec)
// goes on being passed on whole, the files keep their first bytes, and the
// result says what they miss; without a live reader it is refused.
func TestSessionOutputSavedCopyBound(t *testing.T) {
	guest := func() *fakeGuest {
		g := new(fakeGuest).ready().start("test")
		for i := range 10 {
			output(g, "test/p.test", protocol.Stdout, strings.Repeat(string(rune('a'+i)), 100))
		}
		return g.result("test/p.test", protocol.StatusPass, "exit status 0").done(1)
	}
	t.Run("live", func(t *testing.T) {
		dir := t.TempDir()
		s := newSession(outputPlan, dir, defaultSessionLimits)
		s.outs.max = 250
		var live strings.Builder
		s.outs.live = func(o protocol.Output) { live.Write(o.Data) }
		if err := play(t, s, guest()); err != nil {
			t.Fatal(err)
		}
		s.close()
		if live.Len() != 1000 {
			t.Errorf("passed on %d bytes, want all 1000", live.Len())
		}
		b, err := os.ReadFile(filepath.Join(dir, "test", "p.test", "stdout.log"))
		if err != nil || string(b) != live.String()[:250] {
			t.Errorf("stdout.log: %d bytes (%v), want the first 250 passed on", len(b), err)
		}
		want := "exit status 0; output.log keeps the first 250 bytes of the output, 750 more were passed on and not saved"
		if len(s.Results) != 1 || s.Results[0].Message != want {
			t.Errorf("results %+v, want the message %q", s.Results, want)
		}
	})
	t.Run("saved only", func(t *testing.T) {
		s := newSession(outputPlan, t.TempDir(), defaultSessionLimits)
		s.outs.max = 250
		if err := play(t, s, guest()); err == nil || !strings.Contains(err.Error(), "more output than the limit") {
			t.Errorf("err = %v, want the output limit", err)
		}
	})
}
