package guest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleConfig = `#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_BPF_JIT=y
# CONFIG_BPF_JIT_ALWAYS_ON is not set
CONFIG_NET_CLS_BPF=m
CONFIG_LSM="landlock,lockdown,yama,bpf"
CONFIG_NR_CPUS=8192
`

func TestParseKconfig(t *testing.T) {
	cfg, err := parseKconfig(strings.NewReader(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"BPF": "y", "BPF_JIT_ALWAYS_ON": "n", "NET_CLS_BPF": "m",
		"LSM": `"landlock,lockdown,yama,bpf"`, "NR_CPUS": "8192",
	} {
		if cfg[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg[k], want)
		}
	}
	if len(cfg) != 7 {
		t.Errorf("parsed %d options, want 7: %v", len(cfg), cfg)
	}

	sel := selectConfig(cfg, bpfConfig)
	if len(sel) != len(bpfConfig) {
		t.Fatalf("selected %d options, want %d", len(sel), len(bpfConfig))
	}
	if sel["BPF_SYSCALL"] != "y" || sel["NET_CLS_BPF"] != "m" || sel["BPF_JIT_ALWAYS_ON"] != "n" || sel["BPF_LSM"] != "n" {
		t.Errorf("selected %v", sel)
	}
}

func TestReadKconfig(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(sampleConfig))
	w.Close()
	procConfig := filepath.Join(dir, "config.gz")
	os.WriteFile(procConfig, gz.Bytes(), 0o644)
	boot := filepath.Join(dir, "config-6.1.0")

	// Falls back to /proc/config.gz.
	cfg, src, err := readKconfig([]string{boot, procConfig})
	if err != nil || src != procConfig || cfg["BPF"] != "y" {
		t.Fatalf("fallback: %v from %q, %v", cfg, src, err)
	}
	// Prefers /boot.
	os.WriteFile(boot, []byte("CONFIG_BPF=m\n"), 0o644)
	cfg, src, err = readKconfig([]string{boot, procConfig})
	if err != nil || src != boot || cfg["BPF"] != "m" {
		t.Fatalf("boot: %v from %q, %v", cfg, src, err)
	}
	// Neither.
	if _, _, err := readKconfig([]string{filepath.Join(dir, "a"), filepath.Join(dir, "b.gz")}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("none: %v", err)
	}
	// Corrupt gzip is an error, not a fallback.
	os.WriteFile(procConfig, []byte("not gzip"), 0o644)
	if _, _, err := readKconfig([]string{procConfig}); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt: %v", err)
	}
}
