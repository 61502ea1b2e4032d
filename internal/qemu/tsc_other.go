//go:build !amd64

package qemu

// hostTSCkHz is 0 (unknown) where the guest TSC under TCG is not the host's.
func hostTSCkHz() int64 { return 0 }
