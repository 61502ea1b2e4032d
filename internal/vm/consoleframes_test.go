package vm

import (
	"github.com/vmrunner/vmrunner/internal/qemu"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

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
	c := &qemu.Console{}
	path := filepath.Join(t.TempDir(), "console.log")
	if err := c.Capture(&consoleFrames{s: protocol.NewFrameScanner(strings.NewReader(stream)), stop: stop, msgs: msgs}, path); err != nil {
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
	if !c.HasKind("panic") || !c.Contains("Attempted to kill init") {
		t.Errorf("the panic printed into a frame was not seen: %v", c.Splats())
	}
	// Excerpts and splats quote the kernel's line, not the frame it cut.
	if s := c.Splats(); len(s) != 1 || s[0].Line != "[ 2.5] Kernel panic - not syncing: Attempted to kill init!" {
		t.Errorf("splats %+v, want the panic line alone", s)
	}
}
