package runner

import (
	"encoding/json"
	"errors"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/testsupport/testfs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

func TestPlanExec(t *testing.T) {
	self, err := os.Executable() // an ELF of the host's arch
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testfs.WriteTree(t, dir, map[string]string{"testdata/x": "x"})
	extra := filepath.Join(t.TempDir(), "extra.conf")
	testfs.WriteTree(t, filepath.Dir(extra), map[string]string{"extra.conf": "k=v"})
	m, err := PlanExec(ExecOptions{
		Options: Options{Matrix: matrix.DefaultMatrix()}, Kernels: []string{"6.1"},
		Program: self, Args: []string{"-test.run", "", "a b"}, Env: []string{"K=V"}, Dir: dir,
		Files: []string{extra + ":/etc/app/extra.conf"}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Targets()
	if len(ts) != 1 || ts[0].Kernel.Name != "6.1" || ts[0].Arch != kernels.Host() {
		t.Fatalf("targets %v, want 6.1 on the host's arch", ts)
	}
	if len(m.Checks) != 1 || m.Checks[0].Name != "test" || m.Checks[0].Timeout < time.Minute {
		t.Fatalf("checks %+v", m.Checks)
	}
	if m.Defaults.Timeout < m.Checks[0].Timeout+time.Minute {
		t.Errorf("VM timeout %s leaves no room for boot around a %s check", m.Defaults.Timeout, m.Checks[0].Timeout)
	}
	ac, ok := m.Checks[0].ByArch[kernels.Host()]
	if !ok {
		t.Fatalf("no params for %s", kernels.Host())
	}
	var p protocol.TestParams
	if err := json.Unmarshal(ac.Params, &p); err != nil {
		t.Fatal(err)
	}
	if p.Binary != self || p.Dir != dir || p.Format != protocol.FormatExit || strings.Join(p.Args, "|") != "-test.run||a b" || p.Env[0] != "K=V" {
		t.Errorf("params %+v", p)
	}
	targets := map[string]bool{}
	for _, b := range p.Binds {
		targets[b.Target] = true
	}
	for _, want := range []string{self, dir, "/etc/app/extra.conf"} {
		if !targets[want] {
			t.Errorf("nothing bound at %s (binds %+v)", want, p.Binds)
		}
	}
	if probs := p.Validate(); len(probs) > 0 {
		t.Errorf("the guest would refuse %+v: %v", p, probs)
	}
}

// TestPlanExecShape: --cpus and --memory are every VM's, over the
// matrix's defaults and a kernel's own; without them the matrix decides.
func TestPlanExecShape(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base := matrix.DefaultMatrix()
	base.Kernels[0].CPUs, base.Kernels[0].MemoryMiB = 4, 2048 // a kernel's own shape
	for _, tc := range []struct {
		name            string
		mem, cpus       int
		wantMem, wantCP []int // per kernel of the matrix
	}{
		{"matrix's", 0, 0, []int{2048, 0, 0}, []int{4, 0, 0}},
		{"both", 768, 2, []int{768, 768, 768}, []int{2, 2, 2}},
		{"cpus only", 0, 3, []int{2048, 0, 0}, []int{3, 3, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := PlanExec(ExecOptions{Options: Options{Matrix: base}, Program: self, MemoryMiB: tc.mem, CPUs: tc.cpus})
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range m.Kernels {
				if k.MemoryMiB != tc.wantMem[i] || k.CPUs != tc.wantCP[i] {
					t.Errorf("kernel %s: %d MiB, %d CPUs; want %d, %d", k.Name, k.MemoryMiB, k.CPUs, tc.wantMem[i], tc.wantCP[i])
				}
			}
		})
	}
	if base.Kernels[1].CPUs != 0 {
		t.Errorf("PlanExec changed the matrix it was given")
	}
}

func TestPlanExecBadInput(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	text := filepath.Join(tmp, "notes.txt")
	testfs.WriteTree(t, tmp, map[string]string{"notes.txt": "hello", "big/blob": strings.Repeat("b", 2<<20)})
	other := kernels.ARM64
	if kernels.Host() == kernels.ARM64 {
		other = kernels.X86_64
	}
	for _, tc := range []struct {
		name string
		opts ExecOptions
		want []string
	}{
		{"missing program", ExecOptions{Program: filepath.Join(tmp, "nope")}, []string{"no such file"}},
		{"not an ELF", ExecOptions{Program: text}, []string{"not an ELF executable"}},
		{"arch mismatch", ExecOptions{Program: self, Arches: []kernels.Arch{other}}, []string{"it is " + string(kernels.Host()), "--arch " + string(other)}},
		{"file onto /proc", ExecOptions{Program: self, Files: []string{text + ":/proc/sys/x"}}, []string{"--file", "/proc", "guest's own"}},
		{"file missing", ExecOptions{Program: self, Files: []string{filepath.Join(tmp, "gone")}}, []string{"--file", "no such file"}},
		// The refused place is never the advice, and a name that a
		// terminal would not print as it is comes quoted, on one line.
		{"file /dev/zero", ExecOptions{Program: self, Files: []string{"/dev/zero"}}, []string{`--file "/dev/zero": `, "like --file /dev/zero:/tmp/zero"}},
		{"file with a newline", ExecOptions{Program: self, Files: []string{"/tmp/a\nb"}}, []string{`--file "/tmp/a\nb": `, `like --file "/tmp/a\nb:/tmp/file"`}},
		{"directory too large", ExecOptions{Program: self, Dir: tmp, MaxDirBytes: 1 << 20}, []string{"2.0 MiB", "more than 1.0 MiB", "big/blob", "--max-dir-size"}},
		{"unknown kernel", ExecOptions{Program: self, Kernels: []string{"4.4"}}, []string{`no kernel "4.4"`, "5.10, 6.1, 6.12"}},
		{"bad env", ExecOptions{Program: self, Env: []string{"NOEQUALS"}}, []string{"--env", "KEY=VALUE"}},
		{"root as directory", ExecOptions{Program: self, Dir: "/"}, []string{"cannot be shared", "--dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Matrix = matrix.DefaultMatrix()
			_, err := PlanExec(tc.opts)
			if !errors.Is(err, matrix.ErrBadMatrix) {
				t.Fatalf("err = %v, want bad input (ErrBadMatrix)", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestTestName(t *testing.T) {
	for in, want := range map[string]string{
		"pkg.test":              "pkg.test",
		"agent-{arch}.test":     "agent.test",
		"my agent (copy).test":  "my_agent_copy.test",
		"{arch}":                "program",
		strings.Repeat("a", 90): strings.Repeat("a", 64),
	} {
		if got := matrix.TestName(in); got != want {
			t.Errorf("TestName(%q) = %q, want %q", in, got, want)
		}
	}
}
