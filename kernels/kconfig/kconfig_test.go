package kconfig

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sample = `#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_BPF_JIT=y
# CONFIG_BPF_JIT_ALWAYS_ON is not set
CONFIG_NET_CLS_BPF=m
CONFIG_LSM="landlock,lockdown,yama,bpf"
  CONFIG_NR_CPUS=8192
# a comment about CONFIG_FOO=y
NOT_CONFIG_X=y
CONFIG_NR_CPUS=64
`

func TestParse(t *testing.T) {
	cfg, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		"BPF": "y", "BPF_SYSCALL": "y", "BPF_JIT": "y", "BPF_JIT_ALWAYS_ON": "n", "NET_CLS_BPF": "m",
		"LSM": `"landlock,lockdown,yama,bpf"`, "NR_CPUS": "64",
	}
	if len(cfg) != len(want) {
		t.Errorf("parsed %d options, want %d: %v", len(cfg), len(want), cfg)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if got := cfg.Get("BPF_LSM"); got != "n" {
		t.Errorf("absent option = %q, want n", got)
	}
	sel := cfg.Select(BPFOptions)
	if len(sel) != len(BPFOptions) || sel["BPF_SYSCALL"] != "y" || sel["NET_CLS_BPF"] != "m" || sel["BPF_JIT_ALWAYS_ON"] != "n" || sel["BPF_LSM"] != "n" {
		t.Errorf("selected %v", sel)
	}
}

func TestParseOptionsOrder(t *testing.T) {
	opts, err := ParseOptions(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range opts {
		names = append(names, o.Name+"="+o.Value)
	}
	want := []string{"BPF=y", "BPF_SYSCALL=y", "BPF_JIT=y", "BPF_JIT_ALWAYS_ON=n", "NET_CLS_BPF=m",
		`LSM="landlock,lockdown,yama,bpf"`, "NR_CPUS=8192", "NR_CPUS=64"}
	if !slices.Equal(names, want) {
		t.Errorf("options\n got %v\nwant %v", names, want)
	}
}

func TestParseLongLine(t *testing.T) {
	_, err := Parse(strings.NewReader("CONFIG_X=\"" + strings.Repeat("a", 2*maxLine) + "\"\n"))
	if err == nil {
		t.Fatal("a 2 MiB line parsed")
	}
}

func TestReadFirst(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(sample))
	w.Close()
	procConfig := filepath.Join(dir, "config.gz")
	if err := os.WriteFile(procConfig, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(dir, "config-6.1.0")

	// Falls back to /proc/config.gz.
	cfg, src, err := ReadFirst([]string{boot, procConfig})
	if err != nil || src != procConfig || cfg["BPF"] != "y" {
		t.Fatalf("fallback: %v from %q, %v", cfg, src, err)
	}
	// Prefers the first.
	os.WriteFile(boot, []byte("CONFIG_BPF=m\n"), 0o644)
	cfg, src, err = ReadFirst([]string{boot, procConfig})
	if err != nil || src != boot || cfg["BPF"] != "m" {
		t.Fatalf("boot: %v from %q, %v", cfg, src, err)
	}
	// Neither.
	if _, _, err := ReadFirst([]string{filepath.Join(dir, "a"), filepath.Join(dir, "b.gz")}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("none: %v", err)
	}
	// Corrupt gzip is an error, not a fallback.
	os.WriteFile(procConfig, []byte("not gzip"), 0o644)
	if _, _, err := ReadFirst([]string{procConfig}); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt: %v", err)
	}
}
