package guest

import (
	"log"
	"time"

	"golang.org/x/sys/unix"
)

// powerOff syncs and powers the VM off. It does not return: should the
// power-off fail, it waits for the host's watchdog rather than exit, since
// PID 1 exiting panics the kernel.
func powerOff(logger *log.Logger) {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logger.Printf("power off: %v", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
