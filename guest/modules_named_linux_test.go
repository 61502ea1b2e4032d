package guest

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadIndexedModules(t *testing.T) {
	index := filepath.Join(t.TempDir(), "modules.ondemand")
	writeTestFile(t, index, "nf_conntrack /m/nf_defrag_ipv4.ko /m/libcrc32c.ko /m/nf_conntrack.ko\ncrc32c\nbroken /m/broken.ko\n")
	var loaded []string
	load := func(p string) error {
		if strings.Contains(p, "broken") {
			return errors.New("exec format error")
		}
		loaded = append(loaded, p)
		return nil
	}
	if err := loadIndexedModules(index, []string{"nf-conntrack", "crc32c"}, load); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/m/nf_defrag_ipv4.ko", "/m/libcrc32c.ko", "/m/nf_conntrack.ko"}; !slices.Equal(loaded, want) {
		t.Errorf("loaded %v, want %v", loaded, want)
	}
	err := loadIndexedModules(index, []string{"nope", "broken"}, load)
	if err == nil || !strings.Contains(err.Error(), "module nope: not in this kernel's module tree") ||
		!strings.Contains(err.Error(), "module broken: load /m/broken.ko: exec format error") {
		t.Errorf("err = %v", err)
	}
	err = loadIndexedModules(filepath.Join(t.TempDir(), "none"), []string{"nf_conntrack"}, load)
	if err == nil || !strings.Contains(err.Error(), "no module of nf_conntrack is in this kernel's module tree") {
		t.Errorf("no index: %v", err)
	}
}
