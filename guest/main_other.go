//go:build !linux

package guest

import (
	"fmt"
	"os"
)

// Main is the agent's entry point; the agent runs only on Linux.
func Main() {
	fmt.Fprintln(os.Stderr, "vmrunner-agent: runs only as PID 1 of a Linux VM")
	os.Exit(2)
}
