package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/ulikunitz/xz"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// TestExternalBTF boots a real Debian kernel with external BTF given in the
// matrix, as a kernel without BTF of its own would need: the kernel's own
// .BTF section cut out of its vmlinux and packed as btfhub packs it
// (<uname -r>.btf in a tar.xz). The btf check must read it, and the
// verifier's CO-RE program and the workload's instrumentation must load
// against it. With a BTF that lacks the kernel's types, the same checks
// fail on exactly that: proof that they used the file, not the kernel's.
func TestExternalBTF(t *testing.T) {
	integration(t)
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	dir := t.TempDir()
	raw := kerneltest.BTF(t, amd64)
	var packed bytes.Buffer
	zw, _ := xz.NewWriter(&packed)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: amd64.Release + ".btf", Mode: 0o644, Size: int64(len(raw)), Typeflag: tar.TypeReg})
	tw.Write(raw)
	tw.Close()
	zw.Close()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(amd64.Release+".btf.tar.xz", packed.Bytes())
	// A BTF with one type: no task_struct for the CO-RE relocations.
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	write("tiny.btf", tiny)
	probes, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bpf", "probes.o"))
	if err != nil {
		t.Fatal(err)
	}
	write("probes.o", probes)
	file := `file: {kernel: "` + amd64.Image + `", modules: "` + amd64.Modules + `", config: "` + amd64.Config + `"}`
	write("matrix.yaml", []byte(`kernels:
  - {name: external, arch: x86_64, source: {`+file+`, btf: {file: `+amd64.Release+`.btf.tar.xz}}}
  - {name: tiny, arch: x86_64, source: {`+file+`, btf: {file: tiny.btf}}}
checks:
  - btf
  - verifier: {objects: [probes.o], programs: [core_task_pid]}
  - workload: {duration: 2s, rates: {http: 20, grpc: 10, sql: 10, redis: 10}}
`))
	out := filepath.Join(dir, "results")
	res := vmrunnerCLI(t, "run", "--out", out, filepath.Join(dir, "matrix.yaml"))
	if res.code != 3 {
		t.Errorf("exit %d, want 3: the tiny BTF fails its checks and the workload cannot run", res.code)
	}
	var r struct {
		Results []struct {
			Kernel, Check, Status, Message string
			Details                        json.RawMessage
		} `json:"results"`
	}
	readLatest(t, out, &r)
	got := map[string]string{}
	for _, rec := range r.Results {
		got[rec.Kernel+"/"+rec.Check] = rec.Status + ": " + rec.Message
		if rec.Kernel == "external" && rec.Check == "workload" {
			var d struct {
				Instrumentation struct {
					KernelBTF string `json:"kernel_btf"`
				} `json:"instrumentation"`
			}
			json.Unmarshal(rec.Details, &d)
			if want := "external BTF from " + filepath.Join(dir, amd64.Release+".btf.tar.xz"); !strings.HasPrefix(d.Instrumentation.KernelBTF, want) {
				t.Errorf("workload instrumentation.kernel_btf = %q, want %q…", d.Instrumentation.KernelBTF, want)
			}
		}
	}
	ext := filepath.Join(dir, amd64.Release+".btf.tar.xz")
	for key, want := range map[string]string{
		"external/btf":                           "pass: vmlinux BTF present, not used; external BTF from " + ext + " as the matrix says: ",
		"external/verifier/probes/core_task_pid": "pass",
		"external/workload":                      "pass",
		"tiny/btf":                               "fail: vmlinux BTF present, not used; external BTF from " + filepath.Join(dir, "tiny.btf") + " as the matrix says: 2 types; missing BTF types: task_struct, sk_buff, sock",
		"tiny/verifier/probes/core_task_pid":     "fail",
		"tiny/workload":                          "error",
	} {
		if !strings.HasPrefix(got[key], want) {
			t.Errorf("%s = %q\nwant it to start with %q", key, got[key], want)
		}
	}
	t.Logf("records: %v", got)
}
