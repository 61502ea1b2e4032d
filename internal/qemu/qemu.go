package qemu

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// Profile selects how a VM is built. ProfileFast is what runs use; ProfileCommon
// is the usual way people boot a kernel in QEMU, kept for the boot benchmark.
type Profile string

// Boot profiles.
const (
	// ProfileFast: x86_64 -M microvm with the uncompressed PVH vmlinux; arm64
	// -M virt with a CPU model that avoids pointer-auth emulation and the raw Image.
	ProfileFast Profile = "fast"
	// ProfileCommon: x86_64 -M pc, arm64 -M virt, -cpu max, compressed image.
	ProfileCommon Profile = "common"
)

// Config is everything needed to build one QEMU command line.
type Config struct {
	Arch      kernels.Arch
	Kernel    *kernels.Kernel
	Initramfs string
	MemoryMiB int
	CPUs      int
	Accel     Accel // resolved: kvm or tcg
	Profile   Profile
	QMP       string // unix socket QEMU listens on (server, wait=on)
	Control   string // unix socket QEMU connects to for the virtio-serial port
	Console   string // unix socket QEMU listens on for the serial console (telnet mode)
	Append    []string
	// Shell puts the serial console on QEMU's stdio (the user's terminal)
	// and tells the agent to run a shell there (repro --shell); the
	// control port goes nowhere.
	Shell bool
	// Incoming, when set, is a snapshot's state file: QEMU loads it
	// (-incoming) instead of booting, and stays paused.
	Incoming string
	// WarmBTF tells the agent to parse the kernel's BTF before ready
	// (protocol.WarmBTFCmdlineFlag): set for VMs that use snapshots.
	WarmBTF bool
}

// Binary returns the qemu-system binary name for arch.
func Binary(a kernels.Arch) string { return qemuArches[a].Binary }

// LookPath finds the QEMU binary for arch and says how to install it if missing.
func LookPath(a kernels.Arch) (string, error) {
	qa, ok := qemuArches[a]
	if !ok {
		return "", fmt.Errorf("no QEMU settings for arch %q", a)
	}
	p, err := exec.LookPath(qa.Binary)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH: install it (apt-get install %s) or run `make install-deps`", qa.Binary, qa.Package)
	}
	return p, nil
}

// Image is the kernel file c boots.
func (c Config) Image() string {
	if qemuArches[c.Arch].machine(c.Profile).Uncompressed && c.Kernel.Uncompressed != "" {
		return c.Kernel.Uncompressed
	}
	return c.Kernel.Image
}

// Args builds the QEMU arguments (without the binary).
func (c Config) Args() []string {
	qa := qemuArches[c.Arch]
	m := qa.machine(c.Profile)
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		// A panic or reboot ends the VM at once.
		"-no-reboot",
		// Paused until QMP is connected and listening for events.
		"-S",
		"-qmp", "unix:" + c.QMP + ",server=on,wait=on",
		"-m", strconv.Itoa(c.MemoryMiB),
		"-smp", strconv.Itoa(c.CPUs),
		"-kernel", c.Image(),
		"-initrd", c.Initramfs,
		// Telnet mode lets the host send a serial break, hence a SysRq.
		"-chardev", "socket,id=console,path=" + c.Console + ",server=on,wait=off,telnet=on",
		"-serial", "chardev:console",
		"-chardev", "socket,id=control,path=" + c.Control,
		"-M", m.Machine,
		"-device", m.SerialBus + ",id=vser",
	}
	if c.Shell {
		a = shellChardevs(a, c)
	}
	for _, d := range qa.Devices {
		a = append(a, "-device", d)
	}
	if c.Accel == AccelKVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg", "-cpu", m.TCGCPU)
	}
	a = append(a, "-device", "virtserialport,bus=vser.0,chardev=control,name="+protocol.PortName)
	// sysrq_always_enabled: Debian allows only a few SysRq functions by
	// default, not the task dumps asked for when a guest hangs.
	cmdline := []string{"panic=-1", "rdinit=/init", "sysrq_always_enabled", "console=" + qa.Console}
	if qa.Cmdline != nil {
		cmdline = append(cmdline, qa.Cmdline(c)...)
	}
	if c.Shell {
		cmdline = append(cmdline, protocol.ShellCmdlineFlag)
	}
	if c.WarmBTF {
		cmdline = append(cmdline, protocol.WarmBTFCmdlineFlag)
	}
	cmdline = append(cmdline, c.Append...)
	a = append(a, "-append", strings.Join(cmdline, " "))
	if c.Incoming != "" {
		// QEMU runs exec: URIs with /bin/sh -c.
		a = append(a, "-incoming", "exec:cat "+shellQuote([]string{c.Incoming}))
	}
	return a
}

// shellQuote renders argv so that it can be pasted into a shell.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ',' || r == '=' || r == ':' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// snapshotPlaceholders stand for what differs between two runs of one key
// in QEMU's arguments: the socket paths, and the kernel and initramfs
// paths, whose contents the key names on their own.
const (
	placeholderQMP       = "@qmp"
	placeholderControl   = "@control"
	placeholderConsole   = "@console"
	placeholderKernel    = "@kernel"
	placeholderInitramfs = "@initramfs"
)

// SnapshotArgs are c's QEMU arguments as a snapshot key holds them. The
// kernel command line loses tsc_early_khz=: the host's TSC rate is measured
// anew by every vmrunner and differs in its last digits, and a restored
// guest calibrated its clock when it booted.
func (c Config) SnapshotArgs() []string {
	c.QMP, c.Control, c.Console, c.Incoming = placeholderQMP, placeholderControl, placeholderConsole, ""
	args := c.Args()
	for i := 1; i < len(args); i++ {
		switch args[i-1] {
		case "-kernel":
			args[i] = placeholderKernel
		case "-initrd":
			args[i] = placeholderInitramfs
		case "-append":
			var words []string
			for _, w := range strings.Fields(args[i]) {
				if !strings.HasPrefix(w, "tsc_early_khz=") {
					words = append(words, w)
				}
			}
			args[i] = strings.Join(words, " ")
		}
	}
	return args
}
