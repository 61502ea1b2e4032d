package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// openChannel opens the channel to the host: the virtio-serial port when the
// kernel has a virtio console, else the serial console (consoleChannel). A
// kernel whose virtio console driver is absent (not built in, no module in
// the initramfs) has no /sys/class/virtio-ports once the modules are loaded,
// and falls back at once; one with the driver but no port after
// PortTimeout (no virtio transport) falls back then.
func openChannel(ctx context.Context, sysfs string, logger *log.Logger) (io.ReadWriteCloser, string, error) {
	_, err := os.Stat(filepath.Join(sysfs, "class", "virtio-ports"))
	if errors.Is(err, fs.ErrNotExist) {
		logger.Print("no virtio console driver (no /sys/class/virtio-ports): speaking over the serial console")
		c, err := openConsoleChannel("/dev/console", "/proc/sys/kernel/printk")
		return c, protocol.ChannelConsole, err
	}
	port, err := waitPort(ctx, sysfs, "/dev", protocol.PortName, PortTimeout)
	if err == nil {
		return port, protocol.ChannelVirtio, nil
	}
	logger.Printf("%v: speaking over the serial console", err)
	c, cerr := openConsoleChannel("/dev/console", "/proc/sys/kernel/printk")
	if cerr != nil {
		return nil, "", fmt.Errorf("%w; %w", err, cerr)
	}
	return c, protocol.ChannelConsole, nil
}

// consoleChannel speaks the protocol over the serial console, as frames
// (protocol.FrameWriter, protocol.FrameReader) among whatever else the
// console shows.
type consoleChannel struct {
	// mu: one frame at a time, and none while the kernel prints loud.
	mu     sync.Mutex
	f      *os.File
	r      *protocol.FrameReader
	printk string
}

func (c *consoleChannel) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *consoleChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return protocol.FrameWriter{W: c.f}.Write(p)
}
func (c *consoleChannel) Close() error { return c.f.Close() }

// loud runs f with the kernel's console log level at 7, so that what f
// makes the kernel print at the normal levels (a SysRq task dump) reaches
// the console, and with no frame in flight: the frames written are drained
// from the tty first (tcdrain), and no frame is written until f has
// returned and the level is back at 1. The kernel's text then cuts no
// frame.
func (c *consoleChannel) loud(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = unix.IoctlSetInt(int(c.f.Fd()), unix.TCSBRK, 1) // tcdrain
	_ = os.WriteFile(c.printk, []byte("7"), 0)
	defer func() { _ = os.WriteFile(c.printk, []byte("1"), 0) }()
	f()
}

// openConsoleChannel makes the console tty a channel. The kernel's console
// log level goes to 1 (emergencies only; an oops or a panic raises it
// itself), so that kernel messages do not cut frames; frames that are cut
// anyway fail their checksum on the host and are never taken as messages.
// Input is made raw (no echo, no line editing, no signals, bytes as sent)
// so that the host's frames arrive as written; output keeps its newline
// translation. A serial break still reaches SysRq: the serial driver
// handles it before the line discipline.
func openConsoleChannel(dev, printk string) (*consoleChannel, error) {
	if err := os.WriteFile(printk, []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("quiet the kernel console: %w", err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open console channel: %w", err)
	}
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read console termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("make the console raw: %w", err)
	}
	return &consoleChannel{f: f, r: protocol.NewFrameReader(f), printk: printk}, nil
}

// consoleName is the tty behind /dev/console, for the log.
func consoleName(sysfs string) string {
	b, _ := os.ReadFile(filepath.Join(sysfs, "class", "tty", "console", "active"))
	return strings.TrimSpace(string(b))
}
