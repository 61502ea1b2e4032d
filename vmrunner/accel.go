package vmrunner

import (
	"fmt"
	"os"

	"github.com/vmrunner/vmrunner/kernels"
)

// Accel is a QEMU accelerator choice.
type Accel string

// Accelerators. AccelAuto resolves per VM to KVM when /dev/kvm is usable and
// the guest arch is the host arch, TCG otherwise.
const (
	AccelAuto Accel = "auto"
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
)

// ParseAccel validates a --accel value.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(s); a {
	case AccelAuto, AccelKVM, AccelTCG:
		return a, nil
	}
	return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", s)
}

// kvmUsable reports whether /dev/kvm can be opened for reading and writing.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// resolveAccel turns auto into kvm or tcg for a guest arch, and refuses kvm
// where it cannot work.
func resolveAccel(want Accel, guest kernels.Arch) (Accel, error) {
	canKVM := guest == kernels.Host() && kvmUsable()
	switch want {
	case AccelKVM:
		if !canKVM {
			if guest != kernels.Host() {
				return "", fmt.Errorf("--accel kvm: cannot run a %s guest on a %s host with KVM; use --accel auto or tcg", guest, kernels.Host())
			}
			return "", fmt.Errorf("--accel kvm: /dev/kvm is missing or not writable; enable KVM or use --accel tcg")
		}
		return AccelKVM, nil
	case AccelTCG:
		return AccelTCG, nil
	}
	if canKVM {
		return AccelKVM, nil
	}
	return AccelTCG, nil
}
