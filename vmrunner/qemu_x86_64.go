package vmrunner

import "strconv"

// x86Args returns the machine, CPU and device arguments for x86_64 guests.
func x86Args(c qemuConfig) []string {
	var a []string
	if c.Profile == ProfileCommon {
		a = append(a, "-M", "pc", "-device", "virtio-serial-pci,id=vser")
	} else {
		// microvm: no PCI, no firmware option ROMs; virtio-mmio devices are
		// described through ACPI, which the modular virtio_mmio driver reads
		// (module parameters on the kernel command line would need modprobe).
		a = append(a, "-M", "microvm,x-option-roms=off", "-device", "virtio-serial-device,id=vser")
	}
	// pvpanic turns a guest panic into a GUEST_PANICKED QMP event.
	a = append(a, "-device", "pvpanic")
	return append(a, cpuArgs(c, "max")...)
}

// x86Cmdline returns kernel command line additions for x86_64 guests.
func x86Cmdline(c qemuConfig) []string {
	if c.Accel == AccelTCG {
		if khz := hostTSCkHz(); khz > 0 {
			return []string{"tsc_early_khz=" + strconv.FormatInt(khz, 10)}
		}
	}
	return nil
}
