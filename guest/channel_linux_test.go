package guest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// openPTY returns a pseudo-terminal's master and its slave's path: a tty
// like the guest's console, for openConsoleChannel.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestConsoleChannel: the console channel quiets the kernel's console, makes
// the tty raw (the host's frames are not echoed back, nor changed) and
// speaks frames both ways.
func TestConsoleChannel(t *testing.T) {
	master, slave := openPTY(t)
	dir := t.TempDir()
	printk := filepath.Join(dir, "printk")
	if err := os.WriteFile(printk, []byte("7\t4\t1\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	devkmsg := filepath.Join(dir, "printk_devkmsg")
	if err := os.WriteFile(devkmsg, []byte("ratelimit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The kernel's log: a FIFO; each record the guest writes is one line.
	kmsg := filepath.Join(dir, "kmsg")
	if err := unix.Mkfifo(kmsg, 0o600); err != nil {
		t.Fatal(err)
	}
	records := make(chan []byte, 64)
	go func() {
		defer close(records)
		f, err := os.Open(kmsg)
		if err != nil {
			return
		}
		defer f.Close()
		r := bufio.NewReader(f)
		for {
			rec, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			records <- rec
		}
	}()
	c, err := openConsoleChannel(consoleFiles{dev: slave, printk: printk, kmsg: kmsg, devkmsg: devkmsg}, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, _ := os.ReadFile(devkmsg); strings.TrimSpace(string(b)) != "on" {
		t.Errorf("printk_devkmsg = %q, want on: the kernel would drop frames", b)
	}
	if b, _ := os.ReadFile(printk); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("printk = %q, want 1", b)
	}
	tio, err := unix.IoctlGetTermios(int(c.f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || tio.Iflag&(unix.ICRNL|unix.IXON) != 0 {
		t.Errorf("console not raw: lflag %#x iflag %#x", tio.Lflag, tio.Iflag)
	}

	// Guest → host: kernel records at KERN_EMERG, each at most maxRecord
	// bytes, that the host's console reader puts together; a long
	// message goes as several.
	enc := protocol.NewEncoder(c)
	ready := protocol.Message{Type: protocol.TypeReady, Ready: &protocol.Ready{Agent: strings.Repeat("dev", 1000)}}
	if err := enc.Send(ready); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	for n := 0; ; n++ {
		rec := <-records
		if !bytes.HasPrefix(rec, []byte("<0>")) || len(rec) > maxRecord+3 || bytes.Count(rec, []byte("=vmrunner1")) != 1 {
			t.Fatalf("record %d = %.40q… (%d bytes), want <0> and at most %d bytes", n, rec, len(rec), maxRecord+3)
		}
		// The kernel prints a record with its timestamp.
		fmt.Fprintf(&console, "[    1.%06d] %s", n, rec[3:])
		if bytes.HasPrefix(rec[3:], []byte(protocol.FramePrefix)) {
			if n == 0 {
				t.Errorf("a %d-byte message went as one record", len(ready.Ready.Agent))
			}
			break
		}
	}
	m, err := protocol.NewDecoder(protocol.NewFrameReader(&console)).Next()
	if err != nil || m.Ready == nil || m.Ready.Agent != ready.Ready.Agent {
		t.Fatalf("the host read %+v, %v from the records", m, err)
	}

	// Host → guest: kernel-like text, then a frame; the agent reads the
	// message only, and nothing comes back (no echo).
	host := append([]byte("stray text\r\n"), protocol.AppendFrame(nil, []byte(`{"v":1,"type":"bye"}`))...)
	if _, err := master.Write(host); err != nil {
		t.Fatal(err)
	}
	m, err = protocol.NewDecoder(c).Next()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != protocol.TypeBye {
		t.Errorf("read %s, want bye", m.Type)
	}
	// Had the tty echoed the host's bytes, the echo (queued when the
	// guest's read consumed them) would come before what the guest writes
	// to the tty now; frames go as records, not to the tty.
	if err := enc.Send(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{}}); err != nil {
		t.Fatal(err)
	}
	if rec := <-records; !bytes.HasPrefix(rec, []byte("<0>"+protocol.FramePrefix)) {
		t.Errorf("done went as %q, want one record", rec)
	}
	if _, err := c.f.WriteString("sentinel\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(master).ReadString('\n'); err != nil || strings.TrimRight(line, "\r\n") != "sentinel" {
		t.Errorf("the guest's tty gave %q, %v: want only what the guest wrote to it, no echo", line, err)
	}
}
