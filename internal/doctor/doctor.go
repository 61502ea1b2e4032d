package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Status is how much a finding matters.
type Status int

// Statuses, from harmless to blocking.
const (
	OK    Status = iota
	Warn         // works, but slower or less checked
	Block        // vmrunner cannot run (that part of) a matrix
)

func (s Status) String() string { return [...]string{"ok", "warn", "FAIL"}[s] }

// Finding is one line of the doctor's screen.
type Finding struct {
	Status Status
	Name   string // what was checked: "qemu x86_64", "kvm", "cache"...
	Detail string // what was found
	Fix    string // the command or step that fixes it, for Warn and Block
}

// Line is the finding as one line: status, name, detail and fix.
func (f Finding) Line() string {
	s := fmt.Sprintf("%-4s  %-12s %s", f.Status, f.Name, f.Detail)
	if f.Fix != "" && f.Status != OK {
		s += "; fix: " + f.Fix
	}
	return s
}

// Short is the finding in the one-line form `vmrunner run` prints.
func (f Finding) Short() string {
	s := f.Name + ": " + f.Detail
	if f.Fix != "" && f.Status != OK {
		s += "; fix: " + f.Fix
	}
	return s
}

// Options says what to check. The zero value checks both arches, the
// default cache directory, /dev/kvm ($VMRUNNER_KVM_DEVICE) and Debian's
// keyring.
type Options struct {
	Arches    []string // guest arches: x86_64, arm64 (default both)
	CacheDir  string   // the vmrunner cache (must be set)
	KVMDevice string   // default $VMRUNNER_KVM_DEVICE, else /dev/kvm
	Keyring   string   // default /usr/share/keyrings/debian-archive-keyring.gpg; "-" skips it
	// AgentsReady says the guest agents need no build (beside the
	// binary, or --agent-dir): then no Go toolchain is needed.
	AgentsReady bool
	// Quick skips what costs a process (QEMU -version, go env).
	Quick bool
}

// MinFree is the free space below which the cache blocks a run: a kernel
// takes 100-300 MB there, its initramfs 10-40 MB, a snapshot 60-75 MB.
const MinFree = 1 << 30

// snapshotFree is the free space a snapshot needs (a 512M guest's saved
// state is 60-75 MB; twice that leaves room for the one being written).
const snapshotFree = 256 << 20

// qemuPackage is the binary and Debian package per guest arch.
var qemuPackage = map[string][2]string{
	"x86_64": {"qemu-system-x86_64", "qemu-system-x86"},
	"arm64":  {"qemu-system-aarch64", "qemu-system-arm"},
}

// Check runs every check and returns the findings in screen order.
func Check(ctx context.Context, o Options) []Finding {
	if len(o.Arches) == 0 {
		o.Arches = []string{"x86_64", "arm64"}
	}
	var fs []Finding
	for _, a := range o.Arches {
		fs = append(fs, checkQEMU(ctx, a, o.Quick))
	}
	fs = append(fs, checkKVM(o.KVMDevice))
	if runtime.GOARCH == "amd64" {
		fs = append(fs, checkNested())
	}
	fs = append(fs, checkCache(o.CacheDir)...)
	if o.Keyring != "-" {
		fs = append(fs, checkKeyring(o.Keyring))
	}
	fs = append(fs, checkGo(ctx, o.AgentsReady, o.Quick))
	return fs
}

// FirstBlock returns the first Block finding, if any.
func FirstBlock(fs []Finding) (Finding, bool) {
	for _, f := range fs {
		if f.Status == Block {
			return f, true
		}
	}
	return Finding{}, false
}

var qemuVersion = regexp.MustCompile(`QEMU emulator version ((\d+)\.(\d+)\S*)`)

// minQEMU is the oldest QEMU per guest arch that has what vmrunner's
// command line uses (internal/qemu/qemu_arch.go), and why. vmrunner is
// tested on 7.2 (Debian 12).
var minQEMU = map[string]struct {
	major, minor int
	why          string
}{
	// microvm describes its virtio-mmio devices in ACPI since 5.2 (QEMU
	// commit 8045df14), which the modular virtio_mmio driver reads.
	"x86_64": {5, 2, "-M microvm with ACPI"},
	// The neoverse-n1 CPU model arrived in 7.1 (target-arm pull of
	// 2022-05-09); TCG guests use it to avoid pointer-auth emulation.
	"arm64": {7, 1, "-cpu neoverse-n1"},
}

// qemuFix is how to get a QEMU new enough.
const qemuFix = "install QEMU %d.%d or later (Debian 12 has 7.2, Ubuntu 24.04 8.2)"

func checkQEMU(ctx context.Context, arch string, quick bool) Finding {
	bin, pkg := qemuPackage[arch][0], qemuPackage[arch][1]
	name := "qemu " + arch
	path, err := exec.LookPath(bin)
	if err != nil {
		return Finding{Block, name, bin + " not on PATH: no " + arch + " guests", "sudo apt-get install " + pkg}
	}
	if quick {
		return Finding{OK, name, path, ""}
	}
	out, err := exec.CommandContext(ctx, path, "-version").Output()
	m := qemuVersion.FindSubmatch(out)
	if err != nil {
		return Finding{Block, name, fmt.Sprintf("%s -version failed: %v", path, err), "sudo apt-get install --reinstall " + pkg}
	}
	if m == nil {
		return Finding{Block, name, fmt.Sprintf("%s -version does not say \"QEMU emulator version X.Y\"", path), "sudo apt-get install --reinstall " + pkg}
	}
	major, _ := strconv.Atoi(string(m[2]))
	minor, _ := strconv.Atoi(string(m[3]))
	if want := minQEMU[arch]; major < want.major || major == want.major && minor < want.minor {
		return Finding{Block, name, fmt.Sprintf("%s %s is older than %d.%d, the oldest that runs %s guests as vmrunner does (%s)", path, m[1], want.major, want.minor, arch, want.why),
			fmt.Sprintf(qemuFix, want.major, want.minor)}
	}
	return Finding{OK, name, fmt.Sprintf("%s %s", path, m[1]), ""}
}

// KVMDevice is the KVM device doctor opens: $VMRUNNER_KVM_DEVICE (for
// tests) or /dev/kvm.
func KVMDevice(o string) string {
	if o != "" {
		return o
	}
	if d := os.Getenv("VMRUNNER_KVM_DEVICE"); d != "" {
		return d
	}
	return "/dev/kvm"
}

const tcgNote = "guests run under TCG emulation, 3-10x slower"

func checkKVM(dev string) Finding {
	dev = KVMDevice(dev)
	fi, err := os.Stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Finding{Warn, "kvm", dev + " does not exist: " + tcgNote,
			"enable virtualisation for this machine (nested virtualisation for a VM), then `sudo modprobe kvm`"}
	case err != nil:
		return Finding{Warn, "kvm", fmt.Sprintf("%v: %s", err, tcgNote), "sudo chmod 666 " + dev}
	case fi.Mode()&fs.ModeCharDevice == 0:
		return Finding{Warn, "kvm", dev + " is not a device: " + tcgNote, "sudo modprobe kvm"}
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return Finding{Warn, "kvm", fmt.Sprintf("%s not openable by %s: %s", dev, userName(), tcgNote),
			"sudo chmod 666 " + dev + " (or `sudo usermod -aG kvm $USER` and log in again)"}
	}
	defer f.Close()
	const (
		kvmGetAPIVersion = 0xAE00
		kvmCreateVM      = 0xAE01
		kvmCreateVCPU    = 0xAE41
	)
	if v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion); err != nil || v != 12 {
		return Finding{Warn, "kvm", dev + " does not answer as KVM: " + tcgNote, "sudo modprobe kvm"}
	}
	// As internal/qemu decides --accel auto: a VM and a vCPU, and on x86
	// VMX or SVM (some sandboxes' /dev/kvm creates vCPUs QEMU cannot run).
	vm, err := unix.IoctlRetInt(int(f.Fd()), kvmCreateVM)
	if err == nil {
		defer unix.Close(vm)
		var vcpu int
		if vcpu, err = unix.IoctlRetInt(vm, kvmCreateVCPU); err == nil {
			unix.Close(vcpu)
		}
	}
	if err != nil {
		return Finding{Warn, "kvm", fmt.Sprintf("%s cannot create a VM (%v): %s", dev, err, tcgNote), "enable nested virtualisation for this machine"}
	}
	if runtime.GOARCH == "amd64" && !cpuHasVirt() {
		return Finding{Warn, "kvm", dev + " opens but the CPU shows no VMX or SVM flag, so QEMU cannot use it: " + tcgNote,
			"enable nested virtualisation for this machine (VMX/SVM in /proc/cpuinfo)"}
	}
	return Finding{OK, "kvm", dev + " usable: guests of the host's arch run under KVM", ""}
}

func cpuHasVirt() bool {
	flags, _ := cpuFlags()
	return slices.ContainsFunc(flags, func(f string) bool { return f == "vmx" || f == "svm" })
}

// CPUInfo is the file the CPU's flags are read from: $VMRUNNER_CPUINFO
// (for tests) or /proc/cpuinfo.
func CPUInfo() string {
	if p := os.Getenv("VMRUNNER_CPUINFO"); p != "" {
		return p
	}
	return "/proc/cpuinfo"
}

// cpuFlags returns the flags of the first CPU in CPUInfo.
func cpuFlags() ([]string, error) {
	b, err := os.ReadFile(CPUInfo())
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, flags, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			return strings.Fields(flags), nil
		}
	}
	return nil, fmt.Errorf("%s has no flags line", CPUInfo())
}

// nestedFix is what turns nested virtualisation on where CI machines run.
const nestedFix = "enable nested virtualisation in the hypervisor running this machine " +
	"(GitHub's hosted Linux runners have it; GCP: --enable-nested-virtualization; " +
	"a KVM host: `modprobe kvm_intel nested=1` or kvm_amd, and -cpu host for this VM)"

// checkNested says whether this machine can run KVM guests as far as the
// CPU shows: a machine that is itself a VM (the hypervisor flag) needs its
// hypervisor to pass VMX or SVM through — nested virtualisation, which CI
// runners often lack.
func checkNested() Finding {
	flags, err := cpuFlags()
	if err != nil {
		return Finding{Warn, "nested", fmt.Sprintf("cannot read the CPU flags: %v", err), "check that /proc is mounted"}
	}
	has := func(f string) bool { return slices.Contains(flags, f) }
	virt := "VMX"
	if has("svm") {
		virt = "SVM"
	}
	vm, hw := has("hypervisor"), has("vmx") || has("svm")
	switch {
	case vm && hw:
		return Finding{OK, "nested", "this machine is a VM and its hypervisor passes " + virt + " through: nested virtualisation is on", ""}
	case vm:
		return Finding{Warn, "nested", "this machine is a VM whose hypervisor passes no VMX or SVM through (nested virtualisation off): " + tcgNote, nestedFix}
	case hw:
		return Finding{OK, "nested", "not a VM (no hypervisor flag) and the CPU has " + virt + ": no nesting needed", ""}
	}
	return Finding{Warn, "nested", "not a VM, and the CPU shows no VMX or SVM flag: " + tcgNote, "enable VT-x or AMD-V in the firmware setup"}
}

func userName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// existing returns dir or its nearest existing parent.
func existing(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

func checkCache(dir string) []Finding {
	at := existing(dir)
	var st unix.Statfs_t
	if err := unix.Statfs(at, &st); err != nil {
		return []Finding{{Block, "cache", fmt.Sprintf("%s: %v", dir, err), "set VMRUNNER_CACHE to a writable directory"}}
	}
	free := int64(st.Bavail) * st.Bsize
	owner := "?"
	var fi unix.Stat_t
	if err := unix.Stat(at, &fi); err == nil {
		owner = strconv.Itoa(int(fi.Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
	}
	detail := fmt.Sprintf("%s: %s free, owned by %s", dir, Size(free), owner)
	if unix.Access(at, unix.W_OK) != nil {
		return []Finding{{Block, "cache", detail + ", not writable by " + userName(),
			fmt.Sprintf("sudo chown -R %s %s (or set VMRUNNER_CACHE)", userName(), at)}, snapshotFinding(Block, "cache not writable")}
	}
	cache := Finding{OK, "cache", detail, ""}
	if free < MinFree {
		cache = Finding{Block, "cache", fmt.Sprintf("%s: %s free, owned by %s, under the %s a run needs", dir, Size(free), owner, Size(MinFree)),
			"vmrunner kernels prune --all, or set VMRUNNER_CACHE to a larger disk"}
	}
	snap := snapshotFinding(OK, "")
	switch {
	case free < snapshotFree:
		snap = snapshotFinding(Warn, fmt.Sprintf("%s free, a snapshot needs %s: VMs boot every time", Size(free), Size(snapshotFree)))
	default:
		// QEMU saves through `migrate exec:cat > F`, run by /bin/sh -c.
		if _, err := os.Stat("/bin/sh"); err != nil {
			snap = snapshotFinding(Warn, "no /bin/sh for QEMU's exec: migration: VMs boot every time")
		}
	}
	return []Finding{cache, snap}
}

func snapshotFinding(s Status, why string) Finding {
	switch s {
	case OK:
		return Finding{OK, "snapshots", "can be saved: a VM run before restores in 0.3-0.5 s", ""}
	case Warn:
		return Finding{Warn, "snapshots", why, "vmrunner kernels prune --all, or set VMRUNNER_CACHE to a larger disk"}
	}
	return Finding{Block, "snapshots", why, "see the cache line"}
}

// DebianKeyring is where Debian's archive keyring is installed.
const DebianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

func checkKeyring(path string) Finding {
	if path == "" {
		path = DebianKeyring
	}
	if _, err := os.Stat(path); err != nil {
		return Finding{Warn, "keyring", path + " missing: Debian InRelease signatures are not checked", "sudo apt-get install debian-archive-keyring"}
	}
	return Finding{OK, "keyring", path + ": Debian mirror signatures checked", ""}
}

func checkGo(ctx context.Context, agentsReady, quick bool) Finding {
	path, err := exec.LookPath("go")
	if err != nil {
		if agentsReady {
			return Finding{OK, "go", "not on PATH, not needed: the guest agents are beside vmrunner", ""}
		}
		return Finding{Block, "go", "not on PATH, and no guest agents beside vmrunner to run without it",
			"install Go (https://go.dev/dl/), or `make build` in a clone and pass --agent-dir"}
	}
	v := path
	if !quick {
		if out, err := exec.CommandContext(ctx, path, "env", "GOVERSION").Output(); err == nil {
			v = fmt.Sprintf("%s %s", path, bytes.TrimSpace(out))
		}
	}
	if agentsReady {
		return Finding{OK, "go", v + " (not needed: the guest agents are beside vmrunner)", ""}
	}
	return Finding{OK, "go", v + ": builds the guest agents on first use", ""}
}

// Size prints n bytes in binary units, as df -h does.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", f), "0"), ".") + " " + string("KMGTP"[i]) + "iB"
}
