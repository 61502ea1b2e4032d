// This file is named aarch64, not arm64: a _arm64.go suffix would make it build only on arm64 hosts.

package vmrunner

// arm64Args returns the machine, CPU and device arguments for arm64 guests.
func arm64Args(c qemuConfig) []string {
	a := []string{"-M", "virt", "-device", "virtio-serial-device,id=vser"}
	cpu := "max"
	if c.Profile == ProfileFast {
		// Emulating pointer authentication (the QARMA cipher) dominates boot
		// time under TCG: neoverse-n1 has none and boots ~3x faster than max.
		cpu = "neoverse-n1"
	}
	return append(a, cpuArgs(c, cpu)...)
}

// cpuArgs selects the accelerator and a CPU model (host under KVM).
func cpuArgs(c qemuConfig, tcgCPU string) []string {
	if c.Accel == AccelKVM {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg", "-cpu", tcgCPU}
}
