package guest

import (
	"bufio"
	"fmt"
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
	printk := filepath.Join(t.TempDir(), "printk")
	if err := os.WriteFile(printk, []byte("7\t4\t1\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := openConsoleChannel(slave, printk)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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

	// Guest → host: one frame line, as the host's console reader sees it.
	enc := protocol.NewEncoder(c)
	if err := enc.Send(protocol.Message{Type: protocol.TypeReady, Ready: &protocol.Ready{Agent: "dev"}}); err != nil {
		t.Fatal(err)
	}
	hostSide := bufio.NewReader(master)
	line, err := hostSide.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, protocol.FramePrefix) {
		t.Errorf("the guest wrote %q, want a frame", line)
	}

	// Host → guest: kernel-like text, then a frame; the agent reads the
	// message only, and nothing comes back (no echo).
	host := append([]byte("stray text\r\n"), protocol.AppendFrame(nil, []byte(`{"v":1,"type":"bye"}`))...)
	if _, err := master.Write(host); err != nil {
		t.Fatal(err)
	}
	m, err := protocol.NewDecoder(c).Next()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != protocol.TypeBye {
		t.Errorf("read %s, want bye", m.Type)
	}
	// Had the tty echoed the host's bytes, they would come before this.
	if err := enc.Send(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{}}); err != nil {
		t.Fatal(err)
	}
	if line, err := hostSide.ReadString('\n'); err != nil || !strings.HasPrefix(line, protocol.FramePrefix) {
		t.Errorf("after the host's frame the guest's tty gave %q, %v: want the guest's next frame, no echo", line, err)
	}
}
