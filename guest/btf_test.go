package guest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/protocol"
)

// fakeBTFDir writes a BTF directory whose vmlinux holds a few named types.
func fakeBTFDir(t *testing.T, modules ...string) string {
	t.Helper()
	dir := t.TempDir()
	u32 := &btf.Int{Name: "u32", Size: 4}
	types := []btf.Type{
		u32,
		&btf.Struct{Name: "task_struct", Size: 4, Members: []btf.Member{{Name: "pid", Type: u32}}},
		&btf.Struct{Name: "sk_buff", Size: 4, Members: []btf.Member{{Name: "len", Type: u32}}},
		&btf.Typedef{Name: "pid_t", Type: u32},
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux"), raw, 0o444); err != nil {
		t.Fatal(err)
	}
	for _, m := range modules {
		os.WriteFile(filepath.Join(dir, m), nil, 0o444)
	}
	return dir
}

func runBTF(t *testing.T, env btfEnv, params string) (Outcome, *protocol.BTFDetails) {
	t.Helper()
	o, err := env.check(context.Background(), json.RawMessage(params))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := o.Details.(*protocol.BTFDetails)
	if d == nil {
		t.Fatalf("details = %#v", o.Details)
	}
	return o, d
}

// sampleConfig is the head of a real .config.
const sampleConfig = `#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_BPF_JIT=y
# CONFIG_BPF_JIT_ALWAYS_ON is not set
CONFIG_NET_CLS_BPF=m
`

func TestBTFCheck(t *testing.T) {
	dir := fakeBTFDir(t, "virtio_console", "pvpanic")
	config := filepath.Join(t.TempDir(), "config")
	os.WriteFile(config, []byte(sampleConfig+"CONFIG_DEBUG_INFO_BTF=y\n"), 0o644)
	env := btfEnv{Dir: dir, Configs: []string{config}}

	o, d := runBTF(t, env, `{"require":["task_struct","pid_t"]}`)
	if o.Status != protocol.StatusPass {
		t.Fatalf("status %s: %s", o.Status, o.Message)
	}
	if !d.VmlinuxPresent || d.Types < 4 || d.ModuleBTF != 2 || len(d.Found) != 2 || len(d.Missing) != 0 {
		t.Errorf("details = %+v", d)
	}
	if d.ConfigSource != config || d.Config["DEBUG_INFO_BTF"] != "y" || d.Config["BPF_LSM"] != "n" {
		t.Errorf("config %q: %v", d.ConfigSource, d.Config)
	}

	// Defaults: "sock" is not in the fake vmlinux.
	o, d = runBTF(t, env, ``)
	if o.Status != protocol.StatusFail || o.Message != "missing BTF types: sock" {
		t.Errorf("default require: %s %q", o.Status, o.Message)
	}
	if strings.Join(d.Found, ",") != "task_struct,sk_buff" || strings.Join(d.Missing, ",") != "sock" {
		t.Errorf("found %v missing %v", d.Found, d.Missing)
	}

	o, _ = runBTF(t, env, `{"require":["foo","task_struct","bar"]}`)
	if o.Status != protocol.StatusFail || o.Message != "missing BTF types: foo, bar" {
		t.Errorf("missing: %s %q", o.Status, o.Message)
	}

	if _, err := env.check(context.Background(), json.RawMessage(`{"requires":["x"]}`)); err == nil {
		t.Error("misspelt params accepted")
	}
}

func TestBTFCheckAbsent(t *testing.T) {
	o, d := runBTF(t, btfEnv{Dir: filepath.Join(t.TempDir(), "none")}, ``)
	if o.Status != protocol.StatusFail || o.Message != "vmlinux BTF absent: kernel built without CONFIG_DEBUG_INFO_BTF" {
		t.Errorf("absent: %s %q", o.Status, o.Message)
	}
	if d.VmlinuxPresent || d.Config != nil || d.ConfigSource != "" {
		t.Errorf("details = %+v", d)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("garbage, not BTF"), 0o444)
	o, d = runBTF(t, btfEnv{Dir: dir}, ``)
	if o.Status != protocol.StatusFail || !strings.HasPrefix(o.Message, "parse vmlinux BTF: ") || !d.VmlinuxPresent {
		t.Errorf("garbage: %s %q", o.Status, o.Message)
	}
}

// TestBTFCheckHost runs the check against the host kernel's own BTF.
func TestBTFCheckHost(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("host has no vmlinux BTF")
	}
	o, d := runBTF(t, defaultBTFEnv(), ``)
	if o.Status != protocol.StatusPass {
		t.Fatalf("status %s: %s", o.Status, o.Message)
	}
	if d.Types < 10000 {
		t.Errorf("only %d types in the host's vmlinux BTF", d.Types)
	}
	t.Logf("%s; config from %q", o.Message, d.ConfigSource)
}
