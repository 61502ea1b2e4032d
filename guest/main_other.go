//go:build !linux

package guest

import (
	"fmt"
	"os"
)

// Main is the agent's entry point; the agent runs only on Linux.
func Main() { MainWith(nil) }

// MainWith is Main with another conversation; the agent runs only on Linux.
func MainWith(Converse) {
	fmt.Fprintln(os.Stderr, "vmrunner-agent: runs only as PID 1 of a Linux VM")
	os.Exit(2)
}
