package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestConsoleChannel boots Debian 12's 6.1 kernels with their module tree
// trimmed of virtio_console.ko, as a kernel without a virtio console: the
// agent must fall back to the serial console on its own, the btf check
// must pass over it, every record must name the console as the channel,
// and console.log must keep the kernel's text without the frames. A panic
// on arm64 (seen on the console alone: no pvpanic) is still a panic there:
// the quiet console still shows it.
func TestConsoleChannel(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	var matrix strings.Builder
	matrix.WriteString("kernels:\n")
	lines := map[kernels.Arch]string{}
	for _, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		k, err := kernels.Resolve(context.Background(), "fixture", kernels.Spec{Debian: &kernels.DebianSpec{Suite: "bookworm"}}, arch, kernels.Options{})
		if err != nil {
			t.Fatalf("resolve Debian bookworm for %s: %v", arch, err)
		}
		mods := filepath.Join(dir, string(arch))
		kept, dropped := 0, 0
		for _, f := range kerneltest.Files(t, k, kerneltest.ModulesOnly) {
			if strings.Contains(filepath.Base(f.Name), "virtio_console") {
				dropped++
				continue
			}
			p := filepath.Join(mods, filepath.FromSlash(f.Name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			kept++
		}
		if dropped != 1 {
			t.Fatalf("%s: %d virtio_console files dropped, want 1: the kernel must have it as a module for this test", arch, dropped)
		}
		t.Logf("%s %s: %d module files kept, virtio_console.ko removed", arch, k.Release, kept)
		lines[arch] = `  - {name: no-vcon-` + string(arch) + `, arch: ` + string(arch) + `, source: {file: {kernel: "` + k.Image + `", modules: "` + filepath.Join(mods, "lib", "modules", k.Release) + `", config: "` + k.Config + `"}}}` + "\n"
		matrix.WriteString(lines[arch])
	}
	matrix.WriteString("checks: [btf]\n")
	mf := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(mf, []byte(matrix.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	res := vmrunnerCLI(t, "run", "--out", out, mf)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0\n%s", res.code, res.stderr)
	}
	var r struct {
		Results []struct {
			Kernel, Arch, Check, Status, Message, Channel, Console string
		} `json:"results"`
	}
	runDir := readLatest(t, out, &r)
	if len(r.Results) != 2 {
		t.Fatalf("%d records, want 2 (btf on each arch): %+v", len(r.Results), r.Results)
	}
	for _, rec := range r.Results {
		if rec.Check != "btf" || rec.Status != "pass" || rec.Channel != "console" {
			t.Errorf("%s/%s: %s %s channel %q, want btf pass over the console", rec.Kernel, rec.Arch, rec.Check, rec.Status, rec.Channel)
		}
		con, err := os.ReadFile(filepath.Join(runDir, rec.Console))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Linux version", "no virtio console driver", "speaking over the serial console"} {
			if !strings.Contains(string(con), want) {
				t.Errorf("%s console.log lacks %q", rec.Arch, want)
			}
		}
		if strings.Contains(string(con), "=vmrunner1=") {
			t.Errorf("%s console.log holds frames: they are messages, not console text", rec.Arch)
		}
	}
	t.Logf("records: %+v", r.Results)

	panicMatrix := filepath.Join(dir, "panic.yaml")
	if err := os.WriteFile(panicMatrix, []byte("kernels:\n"+lines[kernels.ARM64]+"checks:\n  - selftest: {action: panic}\n  - btf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = vmrunnerCLI(t, "run", "--out", out, panicMatrix)
	if res.code != 3 {
		t.Errorf("panic: exit %d, want 3", res.code)
	}
	var p struct {
		Results []struct {
			Check, Status, Message, Channel, Console string
			ErrorKind                                string `json:"error_kind"`
		} `json:"results"`
	}
	runDir = readLatest(t, out, &p)
	if len(p.Results) != 3 {
		t.Fatalf("panic: %d records, want selftest, btf and vm: %+v", len(p.Results), p.Results)
	}
	for _, rec := range p.Results {
		if rec.Status != "error" || rec.Channel != "console" {
			t.Errorf("panic: %s %s %q channel %q, want an error over the console", rec.Check, rec.Status, rec.Message, rec.Channel)
		}
	}
	if st := p.Results[0]; st.ErrorKind != "panic" || !strings.Contains(st.Message, "sysrq triggered crash") {
		t.Errorf("panic: selftest %s/%s %q, want error/panic with the panic line", st.Status, st.ErrorKind, st.Message)
	}
	if con, err := os.ReadFile(filepath.Join(runDir, p.Results[0].Console)); err != nil || !strings.Contains(string(con), "Kernel panic") {
		t.Errorf("panic: console.log lacks the panic (%v)", err)
	}
}
