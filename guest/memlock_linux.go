package guest

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// RemoveMemlock is removeMemlock for checks outside this package.
func RemoveMemlock() error { return removeMemlock() }

// removeMemlock lifts RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF
// maps and programs to. Not cilium/ebpf's rlimit package: its init function
// creates a map to detect memcg accounting, which runs before the agent has
// mounted /proc, and cilium/ebpf then caches the failed BPF token lookup
// for every later BPF call of the process.
func removeMemlock() error {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err != nil {
		return fmt.Errorf("remove memlock limit: %w", err)
	}
	return nil
}

// memlockLimited reports whether RLIMIT_MEMLOCK is finite: an EPERM from a
// kernel that charges BPF memory to it (before 5.11) is then the limit's.
func memlockLimited() bool {
	var l unix.Rlimit
	return unix.Getrlimit(unix.RLIMIT_MEMLOCK, &l) == nil && l.Cur != unix.RLIM_INFINITY
}
