//go:build !linux

package guest

import "os/exec"

// sandbox leaves cmd as it is: the agent runs only on Linux.
func sandbox(*exec.Cmd) {}
