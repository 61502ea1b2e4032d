package guest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/protocol"
)

// These benchmarks time the guest's side of a plan in the kernel that runs
// them, which is meant to be a VM's:
//
//	CGO_ENABLED=0 go test -c -o /tmp/guest.test ./guest
//	cd guest && vmrunner exec --kernel 6.1 --arch x86_64 \
//	    --file ../testdata/bpf/probes.o:$(dirname $PWD)/testdata/bpf/probes.o -- \
//	    /tmp/guest.test -test.run '^$' -test.bench . -test.benchtime 1x
//
// With -benchtime 1x an iteration is what a fresh VM pays; later ones,
// what another plan of the same agent pays (repro --watch).

// probesObject is testdata/bpf/probes.o, or a skip where it was not
// brought along.
func probesObject(b *testing.B) string {
	obj, _ := filepath.Abs("../testdata/bpf/probes.o")
	if _, err := os.Stat(obj); err != nil {
		b.Skipf("no probes object here (vmrunner exec --file): %v", err)
	}
	return obj
}

// BenchmarkDefaultPlan runs the default matrix's checks in order, as an
// agent runs a plan, and reports each one's time.
func BenchmarkDefaultPlan(b *testing.B) {
	env := hostLoader(b)
	obj := probesObject(b)
	verifierParams, _ := json.Marshal(protocol.VerifierParams{
		Objects: []protocol.VerifierObject{{Path: obj}},
		Expect:  map[string]protocol.VerifierExpect{"uses_bpf_loop": {Fail: []string{"<5.17"}}, "rejected_stack_oob": {Fail: []string{">=3.18"}}},
	})
	steps := []struct {
		name string
		run  func() (Outcome, error)
	}{
		{"btf", func() (Outcome, error) {
			return checkBTF(context.Background(), json.RawMessage(`{"require":["task_struct","sk_buff","sock"]}`))
		}},
		{"features", func() (Outcome, error) {
			return checkFeatures(context.Background(), json.RawMessage(`{"programs":["all"],"maps":["all"],"helpers":["probe_read_kernel","ringbuf_output","get_current_task_btf","loop","get_func_ip"]}`))
		}},
		{"verifier", func() (Outcome, error) { return verifyObjects(context.Background(), env, verifierParams) }},
	}
	took := make([]time.Duration, len(steps))
	for b.Loop() {
		for i, s := range steps {
			start := time.Now()
			o, err := s.run()
			if err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			if o.Status == protocol.StatusError {
				b.Fatalf("%s: %s", s.name, o.Message)
			}
			took[i] += time.Since(start)
		}
	}
	for i, s := range steps {
		b.ReportMetric(float64(took[i].Milliseconds())/float64(b.N), s.name+"-ms/op")
	}
}

// BenchmarkReproReload times what a repro --watch reload does in the
// guest: read the object, and load every program with the detailed log
// (kernel BTF parsed once for the agent); and, for comparison, parsing
// the kernel's BTF, which each plan paid before the agent kept it.
func BenchmarkReproReload(b *testing.B) {
	env := hostLoader(b)
	obj := probesObject(b)
	b.Run("read-object", func(b *testing.B) {
		for b.Loop() {
			if _, err := ebpf.LoadCollectionSpec(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse-kernel-btf", func(b *testing.B) {
		for b.Loop() {
			if _, err := btf.NewCache().Kernel(); err != nil {
				b.Fatal(err)
			}
		}
	})
	params, _ := json.Marshal(protocol.VerifierParams{Objects: []protocol.VerifierObject{{Path: obj}}, LogAlways: true})
	b.Run("verify-all", func(b *testing.B) {
		for b.Loop() {
			if _, err := verifyObjects(context.Background(), env, params); err != nil {
				b.Fatal(err)
			}
		}
	})
}
