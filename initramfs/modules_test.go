package initramfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeModulesDir lays out a lib/modules/<release> directory with modules in
// every supported compression, a built-in and a broken dependency.
func fakeModulesDir(t *testing.T) (dir string, elfs map[string][]byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "lib", "modules", "6.1.0-test")
	elfs = map[string][]byte{}
	add := func(rel, name string, deps ...string) {
		b := fakeModule(t, name, deps...)
		elfs[name] = b
		writeFile(t, filepath.Join(dir, rel), compress(t, moduleSuffix(rel), b))
	}
	add("kernel/drivers/virtio/virtio.ko", "virtio")
	add("kernel/drivers/virtio/virtio_ring.ko.gz", "virtio_ring")
	add("kernel/drivers/virtio/virtio_mmio.ko.xz", "virtio_mmio", "virtio", "virtio_ring")
	add("kernel/drivers/char/virtio_console.ko.zst", "virtio_console", "virtio", "virtio_ring")
	add("kernel/drivers/misc/pvpanic/pvpanic-mmio.ko.xz", "pvpanic_mmio", "pvpanic")
	add("kernel/drivers/broken/broken.ko", "broken", "virtio", "not_there")
	add("kernel/drivers/cycle/cycle_a.ko", "cycle_a", "cycle_b")
	add("kernel/drivers/cycle/cycle_b.ko", "cycle_b", "cycle_a")
	writeFile(t, filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/misc/pvpanic/pvpanic.ko\nkernel/lib/crc32c.ko\n"))
	writeFile(t, filepath.Join(dir, "modules.order"), []byte("not a module\n"))
	return dir, elfs
}

func names(mods []Module) string {
	var s []string
	for _, m := range mods {
		n := m.Name
		if m.Builtin {
			n += "(builtin)"
		}
		s = append(s, n)
	}
	return strings.Join(s, " ")
}

func TestClosure(t *testing.T) {
	dir, _ := fakeModulesDir(t)

	mods, err := Closure(dir, DefaultModules)
	if err != nil {
		t.Fatal(err)
	}
	// virtio_pci and pvpanic_pci are absent and skipped; pvpanic is built in.
	want := "virtio virtio_ring virtio_mmio virtio_console pvpanic(builtin) pvpanic_mmio"
	if got := names(mods); got != want {
		t.Fatalf("closure = %q\nwant      %q", got, want)
	}
	for _, m := range mods {
		if m.Builtin != (m.Path == "") {
			t.Errorf("%s: Builtin %v with Path %q", m.Name, m.Builtin, m.Path)
		}
		if m.Path != "" && moduleName(m.Path) != m.Name {
			t.Errorf("%s: path %s", m.Name, m.Path)
		}
	}
	if got := strings.Join(mods[2].Depends, ","); got != "virtio,virtio_ring" {
		t.Errorf("virtio_mmio depends = %q", got)
	}

	// Spelling with '-' and repeats resolve to the same modules once.
	mods, err = Closure(dir, []string{"pvpanic-mmio", "pvpanic_mmio", "crc32c"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(mods); got != "pvpanic(builtin) pvpanic_mmio crc32c(builtin)" {
		t.Fatalf("closure = %q", got)
	}
}

func TestClosureErrors(t *testing.T) {
	dir, _ := fakeModulesDir(t)

	_, err := Closure(dir, []string{"virtio_console", "broken"})
	if !errors.Is(err, ErrMissingDependency) {
		t.Fatalf("missing dependency: err = %v, want ErrMissingDependency", err)
	}
	if !strings.Contains(err.Error(), "not_there") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error does not name the module and the dependency: %v", err)
	}

	_, err = Closure(dir, []string{"cycle_a"})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: err = %v", err)
	}

	writeFile(t, filepath.Join(dir, "kernel/bad.ko.xz"), []byte("not xz"))
	if _, err := Closure(dir, []string{"bad"}); err == nil {
		t.Fatal("corrupt module accepted")
	}
}

func TestClosureNoModules(t *testing.T) {
	mods, err := Closure("", DefaultModules)
	if err != nil || len(mods) != 0 {
		t.Fatalf("Closure(\"\") = %v, %v", mods, err)
	}
	if _, err := Closure(filepath.Join(t.TempDir(), "nope"), DefaultModules); err == nil {
		t.Fatal("missing modules dir accepted")
	}
}

// TestClosureDebian runs against a real lib/modules/<release> directory when
// VMRUNNER_TEST_MODULES names one (for instance one extracted from a Debian
// linux-image .deb).
func TestClosureDebian(t *testing.T) {
	dir := os.Getenv("VMRUNNER_TEST_MODULES")
	if dir == "" {
		t.Skip("VMRUNNER_TEST_MODULES not set")
	}
	mods, err := Closure(dir, DefaultModules)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(names(mods))
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	for _, m := range mods {
		for _, d := range m.Depends {
			if p, ok := pos[d]; !ok || p > pos[m.Name] {
				t.Errorf("%s: dependency %s not loaded before it", m.Name, d)
			}
		}
	}
	if _, ok := pos["virtio_console"]; !ok {
		t.Error("virtio_console missing")
	}
}
