package qemu

import (
	"strconv"

	"github.com/vmrunner/vmrunner/kernels"
)

// qemuArch is how QEMU runs guests of one architecture. Everything that
// differs between x86_64 and arm64 is in qemuArches, nowhere else.
type qemuArch struct {
	Binary  string // the qemu-system program
	Package string // the Debian package that ships Binary
	Console string // the guest's serial console device, for console=
	// Machines holds the machine each boot profile uses.
	Machines map[Profile]qemuMachine
	// Devices are added to every VM.
	Devices []string
	// Cmdline returns kernel command line words that depend on the VM.
	Cmdline func(Config) []string
}

// qemuMachine is one machine setup of an arch.
type qemuMachine struct {
	Machine   string // -M
	SerialBus string // the virtio-serial bus device (id=vser)
	TCGCPU    string // -cpu under TCG; KVM always runs -cpu host
	// Uncompressed boots the uncompressed kernel when the cache has one.
	Uncompressed bool
}

var qemuArches = map[kernels.Arch]qemuArch{
	kernels.X86_64: {
		Binary:  "qemu-system-x86_64",
		Package: "qemu-system-x86",
		Console: "ttyS0",
		Machines: map[Profile]qemuMachine{
			// microvm: no PCI, no firmware option ROMs, and the uncompressed
			// vmlinux booted through its PVH entry (decompression dominates
			// boot time under TCG). virtio-mmio devices are described through
			// ACPI, which the modular virtio_mmio driver reads (module
			// parameters on the kernel command line would need modprobe).
			ProfileFast:   {Machine: "microvm,x-option-roms=off", SerialBus: "virtio-serial-device", TCGCPU: "max", Uncompressed: true},
			ProfileCommon: {Machine: "pc", SerialBus: "virtio-serial-pci", TCGCPU: "max"},
		},
		// pvpanic turns a guest panic into a GUEST_PANICKED QMP event.
		Devices: []string{"pvpanic"},
		Cmdline: func(c Config) []string {
			// Under TCG the guest's TSC is the host's: skip its calibration
			// against the emulated PIT, which fails on a busy host (hostTSCkHz).
			if c.Accel == AccelTCG {
				if khz := hostTSCkHz(); khz > 0 {
					return []string{"tsc_early_khz=" + strconv.FormatInt(khz, 10)}
				}
			}
			return nil
		},
	},
	kernels.ARM64: {
		Binary:  "qemu-system-aarch64",
		Package: "qemu-system-arm",
		Console: "ttyAMA0",
		Machines: map[Profile]qemuMachine{
			// Emulating pointer authentication (the QARMA cipher) dominates
			// boot time under TCG: neoverse-n1 has none and boots ~3x faster
			// than max. The raw Image needs no decompression.
			ProfileFast:   {Machine: "virt", SerialBus: "virtio-serial-device", TCGCPU: "neoverse-n1", Uncompressed: true},
			ProfileCommon: {Machine: "virt", SerialBus: "virtio-serial-device", TCGCPU: "max"},
		},
		// Debian's cloud-arm64 kernels have no pvpanic: panics are seen on
		// the console and as SHUTDOWN guest-reset (panic=-1, -no-reboot).
	},
}

// machine returns the machine a config boots, defaulting to the fast profile.
func (a qemuArch) machine(p Profile) qemuMachine {
	if m, ok := a.Machines[p]; ok {
		return m
	}
	return a.Machines[ProfileFast]
}
