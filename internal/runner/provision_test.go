package runner

import (
	"bytes"
	"context"
	"errors"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/vm"
	"github.com/vmrunner/vmrunner/protocol"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
)

// fakeAgents makes an agent directory with the files the initramfs packs:
// an agent and the shell tools, as files with some bytes.
func fakeAgents(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, AgentName(kernels.X86_64)), []byte("agent"), 0o755)
	tools := ShellToolsDir(dir, string(kernels.X86_64))
	os.MkdirAll(tools, 0o755)
	for _, tool := range ShellTools {
		os.WriteFile(filepath.Join(tools, tool), []byte(tool), 0o755)
	}
	return dir
}

// TestShellHonoursLock: repro --shell boots the kernel the lock pinned,
// not the one the source resolves to now; without the lock it boots the
// new one. (internal/bench.TestBenchHonoursLock does the same for bench.)
func TestShellHonoursLock(t *testing.T) {
	m, cacheDir, dirA, dirB := kerneltest.PinnedMatrix(t)
	qemuArgs := kerneltest.FakeQEMU(t)
	opts := Options{Matrix: m, CacheDir: cacheDir, AgentDir: fakeAgents(t), Accel: qemu.AccelTCG, Refresh: true, Log: discardLogger()}
	ctx := context.Background()

	var stderr bytes.Buffer
	err := Shell(ctx, ShellOptions{Options: opts, Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr})
	if err == nil {
		t.Fatal("shell with a QEMU that exits 1: no error")
	}
	if ks := kerneltest.BootedKernels(t, qemuArgs); len(ks) != 1 || !kerneltest.AllUnder(ks, dirA) {
		t.Fatalf("shell booted %v (err %v), want the pinned kernel in %s", ks, err, dirA)
	}

	// Without the lock, the same command boots what the source gives now.
	if err := os.Remove(kernels.LockPath(m.Path)); err != nil {
		t.Fatal(err)
	}
	os.Remove(qemuArgs)
	_ = Shell(ctx, ShellOptions{Options: opts, Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr})
	if ks := kerneltest.BootedKernels(t, qemuArgs); len(ks) != 1 || !kerneltest.AllUnder(ks, dirB) {
		t.Fatalf("without the lock: booted %v, want the republished kernel in %s", ks, dirB)
	}
}

// TestProvisionErrors: what cannot be provisioned is an error of the right kind
// before anything boots; bad input matches ErrBadMatrix (exit code 2).
func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "matrix.yaml")
	os.WriteFile(filepath.Join(dir, "bzImage"), []byte("not a kernel"), 0o644)
	os.WriteFile(path, []byte("checks: [btf]\nkernels:\n  - {name: k, arch: x86_64, source: {file: {kernel: bzImage}}}\n"), 0o644)
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache"), AgentDir: fakeAgents(t), Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Provision(context.Background(), m.Targets()[0], nil)
	var pe *ProvisionError
	if !errors.As(err, &pe) || pe.Kind != results.KindBadInput || !errors.Is(err, matrix.ErrBadMatrix) || !errors.Is(err, kernels.ErrNotAKernel) {
		t.Fatalf("not a kernel: %v (%#v), want a bad-input ProvisionError", err, pe)
	}

	os.WriteFile(kernels.LockPath(path), []byte("{"), 0o644)
	if _, err := NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache")}); !errors.Is(err, matrix.ErrBadMatrix) || !strings.Contains(err.Error(), "run vmrunner lock again") {
		t.Errorf("broken lock: %v, want bad input naming the fix", err)
	}
}

// TestGuestFilesConfined: a matrix puts files into a VM only from its own
// directory; anything else (an absolute path, a link out, a device, a huge
// file) is bad input before anything is provisioned. A file named on the
// command line may be anywhere.
func TestGuestFilesConfined(t *testing.T) {
	obj, err := filepath.Abs("../../testdata/bpf/probes.o")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "probes.o"), data, 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd.o"))
	huge := filepath.Join(dir, "huge.o")
	f, _ := os.Create(huge)
	f.Truncate(600 << 20) // sparse
	f.Close()
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "outside.o"), data, 0o644)

	for _, tc := range []struct {
		name, objects string
		msg           string // "" for none
	}{
		{"inside", `["probes.o"]`, ""},
		{"inside, absolute", `["` + filepath.Join(dir, "probes.o") + `"]`, ""},
		{"/etc/shadow", `["/etc/shadow"]`, "check verifier: /etc/shadow is outside the matrix's directory " + dir + ": a matrix may only put files from its own directory (or its project's) into a VM; copy it there, or name it on the command line"},
		{"glob of /etc", `["/etc/*"]`, "is outside the matrix's directory"},
		{"another directory", `["` + filepath.Join(other, "outside.o") + `"]`, "outside.o is outside the matrix's directory"},
		{"link out", `["passwd.o"]`, "passwd.o (/etc/passwd) is outside the matrix's directory"},
		{"too large", `["huge.o"]`, "huge.o is 600 MiB, too large: the limit is 512 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "matrix.yaml")
			os.WriteFile(path, []byte("kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks:\n  - verifier: {objects: "+tc.objects+"}\n"), 0o644)
			// Refused when the matrix is read (a file the host reads to
			// check it: an object's size) or when it is provisioned.
			m, err := matrix.LoadMatrix(path)
			if err == nil {
				_, err = NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache"), Log: discardLogger()})
			}
			switch {
			case tc.msg == "" && err != nil:
				t.Fatalf("LoadMatrix, NewProvisioner: %v", err)
			case tc.msg != "" && (!errors.Is(err, matrix.ErrBadMatrix) || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("LoadMatrix, NewProvisioner: %v, want bad input containing %q", err, tc.msg)
			}
		})
	}

	// repro --object names its object on the command line.
	path := filepath.Join(dir, "matrix.yaml")
	os.WriteFile(path, []byte("kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n"), 0o644)
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Checks = []matrix.Check{{Name: "verifier", Files: []matrix.GuestFile{{Host: filepath.Join(other, "outside.o"), Guest: "/vmrunner/objects/outside.o", Named: true}}}}
	if _, err := NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache"), Log: discardLogger()}); err != nil {
		t.Errorf("a file named on the command line: %v", err)
	}
	m.Checks[0].Files[0].Host = "/dev/zero"
	if _, err := NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache"), Log: discardLogger()}); !errors.Is(err, matrix.ErrBadMatrix) || !strings.Contains(err.Error(), "/dev/zero is a character device, not a regular file") {
		t.Errorf("/dev/zero named on the command line: %v", err)
	}
}

// TestFilesRoot: a matrix in a project (a directory with .git or go.mod,
// below the home directory) reaches the project's files; a home directory
// kept in git is no project.
func TestFilesRoot(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.Mkdir(filepath.Join(home, ".git"), 0o755)
	project := filepath.Join(home, "src", "tracer")
	os.MkdirAll(filepath.Join(project, "matrices"), 0o755)
	os.MkdirAll(filepath.Join(project, "build"), 0o755)
	os.WriteFile(filepath.Join(project, "go.mod"), []byte("module tracer\n"), 0o644)
	loose := filepath.Join(home, "Downloads", "evil")
	os.MkdirAll(loose, 0o755)
	for _, tc := range []struct{ matrix, want string }{
		{filepath.Join(project, "matrices", "ci.yaml"), project},
		{filepath.Join(project, "ci.yaml"), project},
		{filepath.Join(loose, "matrix.yaml"), loose},
		{"", "."},
	} {
		got, err := filesRoot(tc.matrix)
		want := tc.want
		if want == "." {
			want, _ = os.Getwd()
			want, _ = filepath.EvalSymlinks(want)
			if r, err := filesRoot(filepath.Join(want, "x.yaml")); err == nil {
				want = r // the working directory's own project
			}
		}
		if err != nil || got != want {
			t.Errorf("filesRoot(%q) = %q, %v; want %q", tc.matrix, got, err, want)
		}
	}

	// Through NewProvisioner: ../build from matrices/ is the project's.
	os.WriteFile(filepath.Join(project, "build", "a.o"), []byte("\x7fELF"), 0o644)
	os.WriteFile(filepath.Join(home, "secret.o"), []byte("\x7fELF"), 0o644)
	for _, tc := range []struct{ dir, object, msg string }{
		{filepath.Join(project, "matrices"), "../build/a.o", ""},
		{loose, "../../secret.o", "is outside the matrix's directory " + loose},
	} {
		path := filepath.Join(tc.dir, "matrix.yaml")
		os.WriteFile(path, []byte("kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks:\n  - verifier: {objects: ["+tc.object+"]}\n"), 0o644)
		m, err := matrix.LoadMatrix(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewProvisioner(Options{Matrix: m, CacheDir: t.TempDir(), Log: discardLogger()})
		if (tc.msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s from %s: %v, want %q", tc.object, tc.dir, err, tc.msg)
		}
	}
}

// TestProvisionMemory: an initramfs the VM cannot unpack is bad input that
// says how much memory it needs, not a boot that fails in qemu.log.
func TestProvisionMemory(t *testing.T) {
	amd := kerneltest.Debian(t, kernels.X86_64)
	dir := t.TempDir()
	obj := filepath.Join(dir, "big.o")
	os.WriteFile(obj, bytes.Repeat([]byte{0x7f}, 40<<20), 0o644)
	path := filepath.Join(dir, "matrix.yaml")
	os.WriteFile(path, []byte("kernels:\n  - {name: k, arch: x86_64, memory: 128M, source: {file: {kernel: \""+amd.Image+"\", modules: \""+amd.Modules+"\"}}}\n  - {name: big, arch: x86_64, memory: 512M, source: {file: {kernel: \""+amd.Image+"\", modules: \""+amd.Modules+"\"}}}\nchecks:\n  - verifier: {objects: [big.o]}\n"), 0o644)
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvisioner(Options{Matrix: m, CacheDir: filepath.Join(dir, "cache"), AgentDir: fakeAgents(t), Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	targets := m.Targets()
	_, err = p.Provision(context.Background(), targets[0], nil)
	var pe *ProvisionError
	if !errors.As(err, &pe) || pe.Kind != results.KindBadInput || !strings.Contains(err.Error(), "a VM of 128 MiB cannot unpack it: give kernel k memory: ") {
		t.Fatalf("128M VM, 40 MB object: %v, want bad input naming the memory to give", err)
	}
	if pt, err := p.Provision(context.Background(), targets[1], nil); err != nil || pt.MemoryMiB != 512 {
		t.Fatalf("512M VM: %v", err)
	}
}

// TestProvisionMemoryFiles: files sent over the channel that the guest's root
// tmpfs (half its memory) cannot hold are refused before boot, naming the
// total, the memory and the fix (issue 20, item 8: Debian's bpftrace, 210
// MB of libraries, in a 512 MiB VM ended in "bad address" in the guest).
func TestProvisionMemoryFiles(t *testing.T) {
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(initrd, make([]byte, 20<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	target := matrix.Target{Kernel: matrix.KernelEntry{Name: "6.1"}, Arch: kernels.X86_64}
	pt := &Provisioned{Target: target, Initramfs: initrd, MemoryMiB: 512,
		Files: []vm.PlanFile{{Spec: protocol.FileSpec{Path: "/usr/lib/libLLVM.so", Size: 150 << 20}}, {Spec: protocol.FileSpec{Path: "/usr/bin/bpftrace", Size: 60 << 20}}}}
	err := pt.checkMemory()
	want := "the files sent to 6.1/x86_64 total 210 MiB, and with its initramfs's 20 MiB they do not fit the guest's root file system, a tmpfs of half its 512 MiB: give kernel 6.1 memory: 524M or more, or send fewer or smaller files"
	if err == nil || err.Error() != want {
		t.Errorf("512 MiB:\n got %v\nwant %s", err, want)
	}
	pt.MemoryMiB = 2048
	if err := pt.checkMemory(); err != nil {
		t.Errorf("2 GiB: %v", err)
	}
}

// TestNoVirtioConsole: which kernels are known to speak over the serial
// console (whose programs' files then go into a per-run archive rather
// than over that slow line).
func TestNoVirtioConsole(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	with := filepath.Join(dir, "with", "lib", "modules", "6.1")
	write("with/lib/modules/6.1/kernel/drivers/char/virtio_console.ko", "x")
	without := filepath.Join(dir, "without", "lib", "modules", "6.1")
	write("without/lib/modules/6.1/kernel/drivers/virtio/virtio_mmio.ko", "x")
	builtin := filepath.Join(dir, "builtin", "lib", "modules", "6.1")
	write("builtin/lib/modules/6.1/modules.builtin", "kernel/drivers/char/virtio_console.ko\n")
	cfgY := write("config-y", "CONFIG_VIRTIO_CONSOLE=y\n")
	cfgM := write("config-m", "CONFIG_VIRTIO_CONSOLE=m\n")
	cfgN := write("config-n", "# CONFIG_VIRTIO_CONSOLE is not set\n")
	for _, tc := range []struct {
		name            string
		config, modules string
		want            bool
	}{
		{"built in by config", cfgY, without, false},
		{"not set in config", cfgN, with, true},
		{"module there", cfgM, with, false},
		{"module removed", cfgM, without, true},
		{"module removed, no config", "", without, true},
		{"built in by modules.builtin", "", builtin, false},
		{"nothing known", "", "", false},
	} {
		if got := noVirtioConsole(&kernels.Kernel{Config: tc.config, Modules: tc.modules}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
