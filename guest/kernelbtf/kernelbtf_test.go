package kernelbtf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestSharedCacheFollowsModules(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	touch("vmlinux")
	touch("virtio")
	s := &sharedCache{dir: dir}
	first := s.get()
	if first == nil {
		t.Fatal("no cache")
	}
	if again := s.get(); again != first {
		t.Error("same modules, but a new cache: the kernel's BTF would be parsed again")
	}
	touch("nf_tables") // a check loaded a module with BTF
	second := s.get()
	if second == first {
		t.Error("a module with BTF appeared, but the old cache (which lists modules once) was kept")
	}
	if again := s.get(); again != second {
		t.Error("same modules, but a new cache after the change")
	}
	if err := os.Remove(filepath.Join(dir, "nf_tables")); err != nil {
		t.Fatal(err)
	}
	if s.get() == second {
		t.Error("a module with BTF went away, but the old cache was kept")
	}
}

func TestLoad(t *testing.T) {
	var b btf.Builder
	if _, err := b.Add(&btf.Struct{Name: "vmrunner_probe", Size: 4, Members: []btf.Member{{Name: "x", Type: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}}}); err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "btf")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// Not Default's file: read anew, each time.
	c := Choice{External: "test", Path: path}
	spec, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.AnyTypeByName("vmrunner_probe"); err != nil {
		t.Errorf("the loaded types lack the file's struct: %v", err)
	}
	if again, _ := Load(c); again == spec {
		t.Error("a file other than Default's was kept")
	}
	if _, err := Load(Choice{}); err == nil {
		t.Error("a choice of no BTF loaded something")
	}

	// The kernel's own, where this machine has it: one parse, shared.
	if _, err := os.Stat(Default.Vmlinux); err != nil {
		t.Skipf("no kernel BTF here: %v", err)
	}
	kc := Choice{VmlinuxPresent: true, Path: Default.Vmlinux}
	first, err := Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Load(kc); again != first {
		t.Error("the kernel's BTF was parsed twice")
	}
	if fromCache, _ := Cache().Kernel(); fromCache != first {
		t.Error("the btf check and the loaders do not share the kernel's BTF")
	}
}

// TestWarm: what Warm decodes ahead is the spec the btf check and the
// loaders are then given, with every type of the kernel's BTF in it.
func TestWarm(t *testing.T) {
	if _, err := os.Stat(Default.Vmlinux); err != nil {
		t.Skipf("no kernel BTF here: %v", err)
	}
	n, err := Warm()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := btf.LoadSpec(Default.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, err := range fresh.All() {
		if err != nil {
			t.Fatal(err)
		}
		want++
	}
	if n != want || n == 0 {
		t.Errorf("Warm decoded %d types, the kernel's BTF has %d", n, want)
	}
	warmed, err := Load(Choice{VmlinuxPresent: true, Path: Default.Vmlinux})
	if err != nil {
		t.Fatal(err)
	}
	if fromCache, _ := Cache().Kernel(); fromCache != warmed {
		t.Error("Warm decoded a spec the checks are not given")
	}
}
