package guest

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setWallClock sets CLOCK_REALTIME to t, to the nanosecond
// (clock_settime; settimeofday has microseconds).
func setWallClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_settime: %w", err)
	}
	return nil
}

// addHostEntropy mixes b into the kernel's input pool, credited as full
// entropy (it comes from the host's crypto/rand), with RNDADDENTROPY, then
// forces the CRNG to reseed from that pool with RNDRESEEDCRNG.
//
// Both are needed. Writing to /dev/urandom mixes bytes in but credits
// nothing; RNDADDTOENTCNT credits a count apart from any data; and neither
// reseeds a CRNG that is already initialised, which is what every restored
// guest has. Before Linux 5.18 the CRNG then keeps producing the snapshot's
// stream until its next scheduled reseed (every 300 s), so that two VMs
// restored from one snapshot read the same /dev/urandom bytes.
// RNDRESEEDCRNG (Linux 4.17) reseeds at once, and on 5.18 and later also
// moves every per-CPU CRNG to the new key.
//
// The agent's own Go runtime keeps the random state it had in the snapshot
// (math/rand's seeds are per process); crypto/rand reads getrandom(2) and
// so the reseeded CRNG. Checks that need their own randomness run in a new
// process (the workload runner), seeded by the kernel at exec.
func addHostEntropy(b []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+(len(b)+3)/4*4)
	binary.NativeEndian.PutUint32(info[0:], uint32(len(b)*8))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(b)))
	copy(info[8:], b)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0])))
	runtime.KeepAlive(info)
	if errno != 0 {
		return fmt.Errorf("RNDADDENTROPY: %w", errno)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.RNDRESEEDCRNG, 0); err != nil {
		return fmt.Errorf("RNDRESEEDCRNG: %w", err)
	}
	return nil
}
