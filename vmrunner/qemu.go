package vmrunner

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

// qemuConfig is everything needed to build one QEMU command line.
type qemuConfig struct {
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
}

// QEMUBinary returns the qemu-system binary name for arch.
func QEMUBinary(a kernels.Arch) string {
	if a == kernels.ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// qemuPackage names the Debian package that ships QEMUBinary(a).
func qemuPackage(a kernels.Arch) string {
	if a == kernels.ARM64 {
		return "qemu-system-arm"
	}
	return "qemu-system-x86"
}

// lookQEMU finds the QEMU binary for arch and says how to install it if missing.
func lookQEMU(a kernels.Arch) (string, error) {
	bin := QEMUBinary(a)
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH: install it (apt-get install %s) or run `make install-deps`", bin, qemuPackage(a))
	}
	return p, nil
}

// bootImage picks the kernel file for a profile.
func bootImage(c qemuConfig) string {
	if c.Profile == ProfileFast && c.Kernel.Uncompressed != "" {
		return c.Kernel.Uncompressed
	}
	return c.Kernel.Image
}

// args builds the QEMU arguments (without the binary).
func (c qemuConfig) args() []string {
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		// A panic or reboot ends the VM at once.
		"-no-reboot",
		// Paused until QMP is connected and listening for events.
		"-S",
		"-qmp", "unix:" + c.QMP + ",server=on,wait=on",
		"-m", strconv.Itoa(c.MemoryMiB),
		"-smp", strconv.Itoa(c.CPUs),
		"-kernel", bootImage(c),
		"-initrd", c.Initramfs,
		// Telnet mode lets the host send a serial break, hence a SysRq.
		"-chardev", "socket,id=console,path=" + c.Console + ",server=on,wait=off,telnet=on",
		"-serial", "chardev:console",
		"-chardev", "socket,id=control,path=" + c.Control,
	}
	if c.Shell {
		a = shellChardevs(a, c)
	}
	// sysrq_always_enabled: Debian allows only a few SysRq functions by
	// default, not the task dumps asked for when a guest hangs.
	cmdline := []string{"panic=-1", "rdinit=/init", "sysrq_always_enabled"}
	switch c.Arch {
	case kernels.ARM64:
		a = append(a, arm64Args(c)...)
		cmdline = append(cmdline, "console=ttyAMA0")
	default:
		a = append(a, x86Args(c)...)
		cmdline = append(cmdline, "console=ttyS0")
		cmdline = append(cmdline, x86Cmdline(c)...)
	}
	a = append(a, "-device", "virtserialport,bus=vser.0,chardev=control,name="+protocol.PortName)
	if c.Shell {
		cmdline = append(cmdline, protocol.ShellCmdlineFlag)
	}
	cmdline = append(cmdline, c.Append...)
	a = append(a, "-append", strings.Join(cmdline, " "))
	return a
}
