package guest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/guest/kernelbtf"
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
	if o.Status != protocol.StatusFail || o.Message != "vmlinux BTF absent: kernel built without CONFIG_DEBUG_INFO_BTF, and no external BTF (give one with the source's btf option)" {
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

// externalBTF lays out external BTF as the host packs it: the fake
// vmlinux's types, and its info.
func externalBTF(t *testing.T, from string, replaces bool) kernelbtf.Env {
	t.Helper()
	dir := t.TempDir()
	env := kernelbtf.Env{External: filepath.Join(dir, "vmlinux"), Info: filepath.Join(dir, "info.json")}
	raw, err := os.ReadFile(filepath.Join(fakeBTFDir(t), "vmlinux"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(protocol.ExternalBTFInfo{From: from, Replaces: replaces})
	os.WriteFile(env.External, raw, 0o444)
	os.WriteFile(env.Info, info, 0o444)
	return env
}

// garbageBTFDir is a BTF directory whose vmlinux does not parse: a check
// that passes with it did not read it.
func garbageBTFDir(t *testing.T) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("garbage, not BTF"), 0o444)
	return dir
}

func TestBTFCheckExternal(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name     string
		dir      string // the kernel's BTF directory
		replaces bool
		params   string
		status   protocol.Status
		msg      string
		external string
	}{
		{"absent: external used", none, false, `{"require":["task_struct","sk_buff"]}`, protocol.StatusPass,
			"vmlinux BTF absent; external BTF from btfhub/5.8.0-23-generic.btf.tar.xz: 5 types; has task_struct, sk_buff", "btfhub/5.8.0-23-generic.btf.tar.xz"},
		{"absent: external lacks a type", none, false, ``, protocol.StatusFail,
			"vmlinux BTF absent; external BTF from btfhub/5.8.0-23-generic.btf.tar.xz: 5 types; missing BTF types: sock", "btfhub/5.8.0-23-generic.btf.tar.xz"},
		{"present: shipped BTF not used", fakeBTFDir(t), false, `{"require":["task_struct"]}`, protocol.StatusPass, "5 types, 0 modules with BTF", ""},
		{"present: the matrix's BTF replaces it", garbageBTFDir(t), true, `{"require":["task_struct"]}`, protocol.StatusPass,
			"vmlinux BTF present, not used; external BTF from btfhub/5.8.0-23-generic.btf.tar.xz as the matrix says: 5 types; has task_struct", "btfhub/5.8.0-23-generic.btf.tar.xz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, d := runBTF(t, btfEnv{Dir: tc.dir, External: externalBTF(t, "btfhub/5.8.0-23-generic.btf.tar.xz", tc.replaces)}, tc.params)
			if o.Status != tc.status || o.Message != tc.msg || d.External != tc.external || d.Types != 5 {
				t.Errorf("got %s %q, external %q, %d types\nwant %s %q, external %q", o.Status, o.Message, d.External, d.Types, tc.status, tc.msg, tc.external)
			}
		})
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
