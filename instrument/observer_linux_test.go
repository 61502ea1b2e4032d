package instrument

import (
	"maps"
	"os"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/workload"
)

// TestObserveWorkload runs the real workload on loopback under the real
// programs in the host kernel and compares what they counted with what the
// clients sent. It needs root, kernel BTF and tracefs.
func TestObserveWorkload(t *testing.T) {
	requireBPF(t)
	for _, tt := range []struct {
		name           string
		broken, legacy bool
	}{{"classifier", false, false}, {"broken-status", true, false}, {"bpf_probe_read", false, true}} {
		broken := tt.broken
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			srv, err := workload.Start(ctx, workload.ServerConfig{ErrorRate: 0.3, Latency: time.Millisecond, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			obs, err := Load(Config{TGID: uint32(os.Getpid()), Ports: Ports(srv), BrokenStatus: broken, Legacy: tt.legacy})
			if err != nil {
				t.Fatal(err)
			}
			defer obs.Close()
			sent, err := workload.Run(ctx, srv, workload.Config{
				Duration: time.Second,
				Rates:    map[string]int{workload.HTTP: 200, workload.GRPC: 200, workload.SQL: 200, workload.Redis: 200},
				Seed:     2,
			})
			if err != nil {
				t.Fatal(err)
			}
			counts, err := obs.Counts()
			if err != nil {
				t.Fatal(err)
			}
			observed := Observed(counts)
			for _, p := range workload.Protocols {
				r := sent[p]
				if r.Errors > 0 {
					t.Fatalf("%s: %d client errors, first: %s", p, r.Errors, r.FirstError)
				}
				if r.Ops == 0 {
					t.Fatalf("%s: nothing sent", p)
				}
				equal := maps.Equal(r.Counts, observed[p])
				want := !(broken && p == workload.HTTP)
				if equal != want {
					t.Errorf("%s: sent %v, observed %v (equal %v, want %v)", p, r.Counts, observed[p], equal, want)
				}
			}
			t.Logf("startup: btf %v, load %v, attach %v", obs.Info().KernelBTF, obs.Info().Load, obs.Info().Attach)
			want := map[bool]string{false: "bpf_probe_read_user", true: "bpf_probe_read"}[tt.legacy]
			if got := obs.Info().ProbeRead; got != want {
				t.Errorf("probe read %q, want %q", got, want)
			}
		})
	}
}
