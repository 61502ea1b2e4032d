package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// sandboxArg0 is the argv[0] under which the agent's binary, run again by
// the agent, is the sandbox's init rather than the agent.
const sandboxArg0 = "vmrunner-sandbox"

// The sandbox is where the programs the user brings run (exec's, the test
// check's): a mount namespace of its own whose /dev holds neither the
// agent's channel (/dev/vport*) nor the console (/dev/console,
// /dev/tty[S|AMA]*, /dev/hvc*, /dev/kmsg), and no CAP_SYS_PTRACE, in any
// set: the agent, whose permitted capabilities are then not a subset of the
// program's, cannot be reached through pidfd_getfd, ptrace, /proc/1/mem or
// /proc/1/fd (the kernel's cap_ptrace_access_check). Everything else stays as
// the agent made it: root and every other capability (CAP_BPF,
// CAP_SYS_ADMIN, CAP_PERFMON), the PID namespace (an eBPF program that
// matches its test's PID sees the same number as the test), /proc, the
// test's files, bpffs, tracefs, debugfs, cgroup2, sysfs. See
// docs/guest-trust.md for what that means.
//
// sandbox rewrites cmd so that it starts the agent's own binary, which sets
// the sandbox up in its new mount namespace and executes cmd's program in
// its place: the program keeps the process, its PID, its exit status.
func sandbox(cmd *exec.Cmd) {
	argv0 := cmd.Path
	if len(cmd.Args) > 0 {
		argv0 = cmd.Args[0]
	}
	var rest []string
	if len(cmd.Args) > 1 {
		rest = cmd.Args[1:]
	}
	cmd.Args = append([]string{sandboxArg0, cmd.Path, argv0}, rest...)
	cmd.Path = "/proc/self/exe"
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWNS
}

// sandboxMain sets the sandbox up and executes args[1] with argv args[2:].
// It never returns: a failure is exit 127 (126 for a program that cannot be
// executed), as a shell says it.
func sandboxMain(args []string) {
	// Capabilities are a thread's: the thread that drops them executes.
	runtime.LockOSThread()
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "vmrunner sandbox: no program")
		os.Exit(127)
	}
	if err := enterSandbox(); err != nil {
		fmt.Fprintf(os.Stderr, "vmrunner sandbox: %v\n", err)
		os.Exit(127)
	}
	err := unix.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "vmrunner: exec %s: %v\n", args[1], err)
	if errors.Is(err, unix.ENOENT) {
		os.Exit(127)
	}
	os.Exit(126)
}

// enterSandbox runs in the sandbox's new mount namespace, before the
// program.
func enterSandbox() error {
	// Nothing mounted here shows in the agent's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The agent's /dev goes (detached, not covered: a program with
	// CAP_SYS_ADMIN could unmount a cover), then the sandbox's.
	if err := unix.Unmount("/dev", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the agent's /dev: %w", err)
	}
	if err := sandboxDev("/dev"); err != nil {
		return err
	}
	// stdin was the agent's /dev/null: now the sandbox's, so that the
	// program sees stdin as /dev/null.
	var st unix.Stat_t
	if unix.Fstat(0, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3) {
		null, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("open /dev/null: %w", err)
		}
		if err := unix.Dup3(null, 0, 0); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		unix.Close(null)
	}
	return dropCap(unix.CAP_SYS_PTRACE)
}

// dropCap removes capability c from the bounding set (so that no execve
// gives it back, root's included), the ambient set and the effective,
// permitted and inheritable sets.
func dropCap(c int) error {
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
		return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	i, bit := c/32, uint32(1)<<(c%32)
	data[i].Effective &^= bit
	data[i].Permitted &^= bit
	data[i].Inheritable &^= bit
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop capability %d: %w", c, err)
	}
	return nil
}

// sandboxDevices are the device nodes of the sandbox's /dev: no channel, no
// console, no kernel log, no memory.
var sandboxDevices = []struct {
	name         string
	major, minor uint32
	mode         uint32
}{
	{"null", 1, 3, 0o666}, {"zero", 1, 5, 0o666}, {"full", 1, 7, 0o666},
	{"random", 1, 8, 0o666}, {"urandom", 1, 9, 0o666}, {"tty", 5, 0, 0o666},
	{"net/tun", 10, 200, 0o666},
}

func sandboxDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID, "mode=0755"); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	for _, d := range sandboxDevices {
		p := filepath.Join(dev, d.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := unix.Mknod(p, unix.S_IFCHR|d.mode, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if err := os.Chmod(p, os.FileMode(d.mode)); err != nil { // past the umask
			return err
		}
	}
	for _, dir := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, dir), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount %s/pts: %w", dev, err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mount %s/shm: %w", dev, err)
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}
