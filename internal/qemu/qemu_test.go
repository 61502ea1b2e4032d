package qemu

import (
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

func TestQEMUArgs(t *testing.T) {
	k86 := &kernels.Kernel{Arch: kernels.X86_64, Image: "/c/bzImage", Uncompressed: "/c/vmlinux"}
	k86noPVH := &kernels.Kernel{Arch: kernels.X86_64, Image: "/c/bzImage"}
	karm := &kernels.Kernel{Arch: kernels.ARM64, Image: "/c/vmlinuz", Uncompressed: "/c/Image"}
	tests := []struct {
		name    string
		cfg     Config
		want    []string // substrings of the joined command line
		notWant []string
	}{
		{"x86 fast tcg", Config{Arch: kernels.X86_64, Kernel: k86, Accel: AccelTCG, Profile: ProfileFast},
			[]string{"-M microvm,x-option-roms=off", "-kernel /c/vmlinux", "-accel tcg -cpu max", "virtio-serial-device,id=vser", "-device pvpanic", "console=ttyS0", "panic=-1", "-no-reboot", "-S"},
			[]string{"-M pc", "virtio-serial-pci"}},
		{"x86 fast without PVH falls back to bzImage", Config{Arch: kernels.X86_64, Kernel: k86noPVH, Accel: AccelTCG, Profile: ProfileFast},
			[]string{"-kernel /c/bzImage", "-M microvm"}, nil},
		{"x86 common", Config{Arch: kernels.X86_64, Kernel: k86, Accel: AccelTCG, Profile: ProfileCommon},
			[]string{"-M pc", "-kernel /c/bzImage", "virtio-serial-pci,id=vser", "-cpu max"}, []string{"microvm"}},
		{"x86 kvm", Config{Arch: kernels.X86_64, Kernel: k86, Accel: AccelKVM, Profile: ProfileFast},
			[]string{"-accel kvm -cpu host"}, []string{"tcg"}},
		{"arm64 fast", Config{Arch: kernels.ARM64, Kernel: karm, Accel: AccelTCG, Profile: ProfileFast},
			[]string{"-M virt", "-cpu neoverse-n1", "-kernel /c/Image", "console=ttyAMA0", "virtserialport,bus=vser.0,chardev=control,name=vmrunner.0"},
			[]string{"pvpanic", "-cpu max"}},
		{"arm64 common", Config{Arch: kernels.ARM64, Kernel: karm, Accel: AccelTCG, Profile: ProfileCommon},
			[]string{"-M virt", "-cpu max", "-kernel /c/vmlinuz"}, []string{"neoverse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MemoryMiB, tt.cfg.CPUs = 512, 1
			tt.cfg.QMP, tt.cfg.Control, tt.cfg.Console = "/s/qmp", "/s/ctl", "/s/con"
			got := strings.Join(tt.cfg.Args(), " ")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in\n%s", w, got)
				}
			}
		})
	}
}

func TestResolveAccel(t *testing.T) {
	other := kernels.ARM64
	if kernels.Host() == kernels.ARM64 {
		other = kernels.X86_64
	}
	if a, err := ResolveAccel(AccelAuto, other); err != nil || a != AccelTCG {
		t.Errorf("auto for foreign arch = %v, %v; want tcg", a, err)
	}
	if _, err := ResolveAccel(AccelKVM, other); err == nil {
		t.Errorf("kvm for a foreign arch accepted")
	}
	want := AccelTCG
	if kvmUsable() {
		want = AccelKVM
	}
	if a, err := ResolveAccel(AccelAuto, kernels.Host()); err != nil || a != want {
		t.Errorf("auto for host arch = %v, %v; want %v", a, err, want)
	}
	if _, err := ParseAccel("hvf"); err == nil {
		t.Errorf("ParseAccel(hvf) accepted")
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"qemu", "-append", "console=ttyS0 panic=-1", "it's"})
	want := `qemu -append 'console=ttyS0 panic=-1' 'it'\''s'`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestCPUHasVirt(t *testing.T) {
	for in, want := range map[string]bool{
		"processor\t: 0\nflags\t\t: fpu vme vmx sse\n":       true,
		"flags\t\t: fpu svm\n":                               true,
		"flags\t\t: fpu vme hypervisor sse\nbugs\t\t: vmx\n": false,
		"": false,
	} {
		if got := cpuHasVirt(in); got != want {
			t.Errorf("cpuHasVirt(%q) = %v", in, got)
		}
	}
}

// Every arch says everything a VM needs, for every boot profile.
func TestQEMUArches(t *testing.T) {
	for _, a := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		qa, ok := qemuArches[a]
		if !ok {
			t.Errorf("no QEMU settings for %s", a)
			continue
		}
		if qa.Binary == "" || qa.Package == "" || qa.Console == "" {
			t.Errorf("%s: binary %q, package %q, console %q", a, qa.Binary, qa.Package, qa.Console)
		}
		for _, p := range []Profile{ProfileFast, ProfileCommon} {
			m, ok := qa.Machines[p]
			if !ok || m.Machine == "" || m.SerialBus == "" || m.TCGCPU == "" {
				t.Errorf("%s %s: machine %+v", a, p, m)
			}
		}
	}
	if _, err := LookPath("riscv64"); err == nil || !strings.Contains(err.Error(), "no QEMU settings") {
		t.Errorf("LookPath(riscv64) = %v", err)
	}
}

// What differs between two runs of one VM (socket paths, where the kernel
// and initramfs are, the measured TSC rate) is not in a snapshot's
// arguments; what makes another VM is.
func TestSnapshotArgs(t *testing.T) {
	k := &kernels.Kernel{Arch: kernels.X86_64, Image: "/c/bzImage", Uncompressed: "/c/vmlinux"}
	base := func() Config {
		return Config{Arch: kernels.X86_64, Kernel: k, Initramfs: "/i/a.cpio", MemoryMiB: 512, CPUs: 1,
			Accel: AccelTCG, Profile: ProfileFast, QMP: "/tmp/vmr1/qmp", Control: "/tmp/vmr1/ctl", Console: "/tmp/vmr1/con"}
	}
	args := base().SnapshotArgs()
	joined := strings.Join(args, " ")
	for _, want := range []string{placeholderQMP, placeholderControl, placeholderConsole, "-kernel " + placeholderKernel, "-initrd " + placeholderInitramfs, "-device pvpanic", "-M microvm"} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %q in %s", want, joined)
		}
	}
	if strings.Contains(joined, "tsc_early_khz") || strings.Contains(joined, "/tmp/vmr1") || strings.Contains(joined, "-incoming") {
		t.Errorf("per-run arguments in %s", joined)
	}
	same := map[string]func(*Config){
		"sockets":   func(c *Config) { c.QMP, c.Control, c.Console = "/tmp/vmr2/qmp", "/tmp/vmr2/ctl", "/tmp/vmr2/con" },
		"initramfs": func(c *Config) { c.Initramfs = "/other/b.cpio" },
		"incoming":  func(c *Config) { c.Incoming = "/s/x.state" },
	}
	for name, change := range same {
		c := base()
		change(&c)
		if got := c.SnapshotArgs(); !slices.Equal(got, args) {
			t.Errorf("%s changed the arguments:\n%s\n%s", name, strings.Join(got, " "), joined)
		}
	}
	differ := map[string]func(*Config){
		"memory":  func(c *Config) { c.MemoryMiB = 1024 },
		"cpus":    func(c *Config) { c.CPUs = 2 },
		"append":  func(c *Config) { c.Append = []string{"nokaslr"} },
		"accel":   func(c *Config) { c.Accel = AccelKVM },
		"profile": func(c *Config) { c.Profile = ProfileCommon },
		"arch": func(c *Config) {
			c.Arch, c.Kernel = kernels.ARM64, &kernels.Kernel{Arch: kernels.ARM64, Image: "/c/Image"}
		},
	}
	for name, change := range differ {
		c := base()
		change(&c)
		if got := c.SnapshotArgs(); slices.Equal(got, args) {
			t.Errorf("%s did not change the arguments", name)
		}
	}
	c := base()
	c.Incoming = "/cache/it's.state"
	if got := strings.Join(c.Args(), " "); !strings.Contains(got, `-incoming exec:cat '/cache/it'\''s.state'`) {
		t.Errorf("incoming not quoted for the shell: %s", got)
	}
}
