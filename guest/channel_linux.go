package guest

import (
	"bytes"
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
		c, err := openConsoleChannel(consolePaths, logger)
		return c, protocol.ChannelConsole, err
	}
	port, err := waitPort(ctx, sysfs, "/dev", protocol.PortName, PortTimeout)
	if err == nil {
		return port, protocol.ChannelVirtio, nil
	}
	logger.Printf("%v: speaking over the serial console", err)
	c, cerr := openConsoleChannel(consolePaths, logger)
	if cerr != nil {
		return nil, "", fmt.Errorf("%w; %w", err, cerr)
	}
	return c, protocol.ChannelConsole, nil
}

// consoleChannel speaks the protocol over the serial console, as frames
// (protocol.FrameLines, protocol.FrameReader) among whatever else the
// console shows. It reads the host's frames from the tty, where nothing
// else is written to it, and writes its own as kernel log records at
// KERN_EMERG through /dev/kmsg: the kernel prints a record whole, so no
// kernel message can land inside a frame, whereas a frame written to the
// tty drains from the UART's buffer while the kernel prints straight to
// the UART, and any message printed meanwhile (a soft lockup report under
// load, a user's program writing to /dev/kmsg) cut it.
type consoleChannel struct {
	// mu: one message at a time, and none while the kernel prints loud.
	mu     sync.Mutex
	f      *os.File // the console tty: the host's frames
	kmsg   *os.File // frames to the host; nil: written to f
	r      *protocol.FrameReader
	printk string
}

// maxRecord bounds a frame line written as one kernel log record: the
// kernel refuses records longer than LOG_LINE_MAX (1024 less a prefix of
// at most 48 bytes) and "<0>" comes first.
const maxRecord = 900

// consoleFiles are the files the console channel uses, for tests.
type consoleFiles struct{ dev, printk, kmsg, devkmsg string }

var consolePaths = consoleFiles{
	dev:     "/dev/console",
	printk:  "/proc/sys/kernel/printk",
	kmsg:    "/dev/kmsg",
	devkmsg: "/proc/sys/kernel/printk_devkmsg",
}

func (c *consoleChannel) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *consoleChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := make([]byte, 0, maxRecord+8)
	for _, line := range protocol.FrameLines(bytes.TrimSuffix(p, []byte("\n")), maxRecord) {
		if c.kmsg == nil {
			// To the tty, in lines the host takes (MaxGuestFrameLine).
			if _, err := c.f.Write(line); err != nil {
				return 0, fmt.Errorf("write a frame to the console: %w", err)
			}
			continue
		}
		rec = append(append(rec[:0], "<0>"...), line...)
		if _, err := c.kmsg.Write(rec); err != nil {
			return 0, fmt.Errorf("write a frame to /dev/kmsg: %w", err)
		}
	}
	return len(p), nil
}

func (c *consoleChannel) Close() error {
	if c.kmsg != nil {
		c.kmsg.Close()
	}
	return c.f.Close()
}

// loud runs f with the kernel's console log level at 7, so that what f
// makes the kernel print at the normal levels (a SysRq task dump) reaches
// the console, and with no frame in flight: the frames written are drained
// from the tty first (tcdrain), and no frame is written until f has
// returned and the level is back at 1.
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
// itself), so that the console carries little besides frames; frames are
// kernel records at level 0, printed at that level, and writes to
// /dev/kmsg are not rate-limited (printk_devkmsg "on"), or the kernel
// would drop all but ten frames in five seconds. Without /dev/kmsg the
// frames go to the tty as before, where kernel text may cut them (the host
// then sees a protocol error, never a wrong message). Input is made raw
// (no echo, no line editing, no signals, bytes as sent) so that the host's
// frames arrive as written; output keeps its newline translation. A serial
// break still reaches SysRq: the serial driver handles it before the line
// discipline.
func openConsoleChannel(paths consoleFiles, logger *log.Logger) (*consoleChannel, error) {
	if err := os.WriteFile(paths.printk, []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("quiet the kernel console: %w", err)
	}
	f, err := os.OpenFile(paths.dev, os.O_RDWR|unix.O_NOCTTY, 0)
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
	c := &consoleChannel{f: f, r: protocol.NewFrameReader(f), printk: paths.printk}
	// printk_devkmsg exists since 4.9; before it, writes were not limited.
	if err := os.WriteFile(paths.devkmsg, []byte("on\n"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		logger.Printf("frames go to the tty, where kernel text may cut them: allow /dev/kmsg writes: %v", err)
		return c, nil
	}
	k, err := os.OpenFile(paths.kmsg, os.O_WRONLY, 0)
	if err != nil {
		logger.Printf("frames go to the tty, where kernel text may cut them: %v", err)
		return c, nil
	}
	c.kmsg = k
	return c, nil
}

// consoleName is the tty behind /dev/console, for the log.
func consoleName(sysfs string) string {
	b, _ := os.ReadFile(filepath.Join(sysfs, "class", "tty", "console", "active"))
	return strings.TrimSpace(string(b))
}
