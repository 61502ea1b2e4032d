//go:build !linux

package guest

import "runtime"

// uname returns the kernel release and machine; off Linux only the machine
// is known.
func uname() (release, machine string) {
	return "", runtime.GOARCH
}
