package qemu

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

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

// kvmUsable reports whether KVM can run a guest here: /dev/kvm opens for
// reading and writing, speaks API version 12, creates a VM and a vCPU, and on
// x86 the CPU advertises VMX or SVM. The last test matters: some sandboxes
// offer a /dev/kvm that creates vCPUs but cannot set their MSRs, and QEMU
// aborts on it.
func kvmUsable() bool {
	kvmOnce.Do(func() { kvmOK = probeKVM() })
	return kvmOK
}

var (
	kvmOnce sync.Once
	kvmOK   bool
)

func probeKVM() bool {
	const (
		kvmGetAPIVersion = 0xAE00
		kvmCreateVM      = 0xAE01
		kvmCreateVCPU    = 0xAE41
	)
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion); err != nil || v != 12 {
		return false
	}
	vm, err := unix.IoctlRetInt(int(f.Fd()), kvmCreateVM)
	if err != nil {
		return false
	}
	defer unix.Close(vm)
	vcpu, err := unix.IoctlRetInt(vm, kvmCreateVCPU)
	if err != nil {
		return false
	}
	_ = unix.Close(vcpu)
	if runtime.GOARCH == "amd64" {
		b, err := os.ReadFile("/proc/cpuinfo")
		if err != nil {
			return false
		}
		return cpuHasVirt(string(b))
	}
	return true
}

// cpuHasVirt reports whether /proc/cpuinfo's flags include vmx or svm.
func cpuHasVirt(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		name, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
		return false
	}
	return false
}

// ResolveAccel turns auto into kvm or tcg for a guest arch, and refuses kvm
// where it cannot work.
func ResolveAccel(want Accel, guest kernels.Arch) (Accel, error) {
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
