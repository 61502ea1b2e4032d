package kernels

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestCheckDWARF(t *testing.T) {
	for _, tc := range []struct {
		name, config, err string
	}{
		{"dwarf, no btf", "CONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_DWARF5=y\n# CONFIG_DEBUG_INFO_BTF is not set\n", ""},
		{"own btf", "CONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_BTF=y\n", "CONFIG_DEBUG_INFO_BTF=y): drop pahole, or use the nobtf fragment"},
		{"no dwarf", "# CONFIG_DEBUG_INFO is not set\n", "CONFIG_DEBUG_INFO is not set): add the dwarf fragment"},
		{"reduced", "CONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_REDUCED=y\n", "reduced or split"},
		{"split", "CONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_SPLIT=y\n", "reduced or split"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDWARF([]byte(tc.config))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want bad input containing %q", err, tc.err)
			}
		})
	}
}

// TestPaholeEncode runs the host's pahole on a small object compiled with
// DWARF, as a build: source with pahole runs it on vmlinux, and reads the
// BTF it wrote.
func TestPaholeEncode(t *testing.T) {
	ctx := context.Background()
	p, err := findPahole(ctx)
	if err != nil {
		t.Skipf("%v", err)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: apt-get install build-essential")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "types.c")
	os.WriteFile(src, []byte("struct task_struct { int pid; int tgid; };\nstruct task_struct init_task;\n"), 0o644)
	obj := filepath.Join(dir, "types.o")
	if out, err := exec.Command("gcc", "-g", "-c", "-o", obj, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "types.btf")
	if err := p.encode(ctx, obj, out); err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		t.Fatal(err)
	}
	if len(task.Members) != 2 || task.Members[0].Name != "pid" || task.Members[1].Name != "tgid" {
		t.Errorf("task_struct = %+v, want pid, tgid", task.Members)
	}
	// An object without DWARF: pahole writes nothing usable, and says so.
	if err := os.WriteFile(filepath.Join(dir, "empty.o"), []byte("not elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = p.encode(ctx, filepath.Join(dir, "empty.o"), filepath.Join(dir, "empty.btf"))
	if err == nil || !strings.Contains(err.Error(), "pahole --btf_encode_detached "+filepath.Join(dir, "empty.o")) {
		t.Errorf("err = %v, want pahole's failure naming the file", err)
	}
}

func TestFindPaholeMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPahole(context.Background())
	if err == nil || !strings.Contains(err.Error(), "pahole not found: apt-get install dwarves") {
		t.Errorf("err = %v, want pahole not found", err)
	}
}
