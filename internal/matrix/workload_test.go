package matrix

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

const workloadMatrixHead = `kernels:
  - name: "6.1"
    source: {debian: {suite: bookworm}}
checks:
`

func TestWorkloadParams(t *testing.T) {
	// The RFD's rates (SQL's is its, Redis's ours).
	defaultRates := map[string]int{"http": 10000, "grpc": 5000, "sql": 1000, "redis": 1000}
	tests := []struct {
		name  string
		check string
		want  protocol.WorkloadParams
	}{
		{"defaults", "  - workload\n", protocol.WorkloadParams{
			Scenario: "multi-protocol", Duration: protocol.Duration(10e9), Rates: defaultRates,
			ErrorRate: 0.1, Latency: protocol.Duration(2e6), Profile: "standard", Overhead: true,
		}},
		{"given", "  - workload: {scenario: multi-protocol, duration: 3s, rates: {http: 5, redis: 0}, error_rate: 0, profile: long-running, sample_every: 1s, overhead: false}\n",
			protocol.WorkloadParams{
				Scenario: "multi-protocol", Duration: protocol.Duration(3e9), Rates: map[string]int{"http": 5, "redis": 0},
				ErrorRate: 0, Latency: protocol.Duration(2e6), Profile: "long-running", SampleEvery: protocol.Duration(1e9), Overhead: false,
			}},
		{"broken classifier", "  - workload: {classifier: broken-status}\n", protocol.WorkloadParams{
			Scenario: "multi-protocol", Duration: protocol.Duration(10e9), Rates: defaultRates,
			ErrorRate: 0.1, Latency: protocol.Duration(2e6), Profile: "standard", Overhead: true, Classifier: "broken-status",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatrix("m.yaml", []byte(workloadMatrixHead+tt.check))
			if err != nil {
				t.Fatal(err)
			}
			// What the guest runs with: the parameters sent, over the
			// defaults of protocol's table.
			got, err := protocol.WorkloadCheck.Params(m.Checks[0].Params)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tt.want)
			gotJS, _ := json.Marshal(got)
			if string(gotJS) != string(want) {
				t.Errorf("params\n got %s\nwant %s", gotJS, want)
			}
		})
	}
}

func TestWorkloadParamsErrors(t *testing.T) {
	tests := []struct{ check, want string }{
		{"{scenario: kitchen-sink}", `m.yaml:5:26: checks[0].workload: scenario: "kitchen-sink": expected one of multi-protocol`},
		{"{rates: {htp: 5}}", `m.yaml:5:24: checks[0].workload: rates: unknown protocol "htp" (did you mean "http"?); expected http, grpc, sql, redis`},
		{"{rates: {http: -1}}", `rates: http: -1: expected operations per second`},
		{"{error_rate: 1.5}", `error_rate: 1.5: expected a share from 0 to 1`},
		{"{profile: huge}", `profile: "huge": expected one of standard, constrained, long-running`},
		{"{duration: forever}", `expected a duration like 10m or 90s`},
		{"{sample_every: 1m}", `sample_every: only for profile: long-running`},
		{"{classifier: wrong}", `classifier: "wrong": expected one of broken-status`},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			_, err := ParseMatrix("m.yaml", []byte(workloadMatrixHead+"  - workload: "+tt.check+"\n"))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadMatrix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBeylaParams(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"beyla-x86_64", "beyla-arm64", "beyla"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		check     string
		wantGuest string
		wantFiles []GuestFile
		wantErr   string
	}{
		{check: `{binary: "beyla-{arch}"}`, wantGuest: "/vmrunner/beyla", wantFiles: []GuestFile{
			{Host: filepath.Join(dir, "beyla-x86_64"), Guest: "/vmrunner/beyla/x86_64", Exec: true},
			{Host: filepath.Join(dir, "beyla-arm64"), Guest: "/vmrunner/beyla/arm64", Exec: true},
		}},
		{check: "{binary: beyla, duration: 5s}", wantGuest: "/vmrunner/beyla/bin", wantFiles: []GuestFile{
			{Host: filepath.Join(dir, "beyla"), Guest: "/vmrunner/beyla/bin", Exec: true},
		}},
		{check: "{scenario: multi-protocol}", wantErr: "missing binary"},
		{check: "{binary: nope}", wantErr: "binary: " + filepath.Join(dir, "nope") + ": no such file"},
		{check: "{binary: plain}", wantErr: "is not executable: chmod +x it"},
		{check: "{binary: beyla, rates: {kafka: 1}}", wantErr: `rates: unknown protocol "kafka"`},
		// The load is checked by the same rules as workload's.
		{check: "{binary: beyla, rates: {http: -1}}", wantErr: `m.yaml:5:42: checks[0].beyla: rates: http: -1: expected operations per second from 0 to 1000000`},
		{check: "{binary: beyla, error_rate: 2}", wantErr: `checks[0].beyla: error_rate: 2: expected a share from 0 to 1`},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			m, err := ParseMatrix(filepath.Join(dir, "m.yaml"), []byte(workloadMatrixHead+"  - beyla: "+tt.check+"\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What the guest runs with, defaults filled in.
			p, err := protocol.BeylaCheck.Params(m.Checks[0].Params)
			if err != nil {
				t.Fatal(err)
			}
			if p.Binary != tt.wantGuest || p.Scenario != "multi-protocol" || p.ErrorRate != 0.1 {
				t.Errorf("params %+v, want binary %s", p, tt.wantGuest)
			}
			equal(t, "files", m.Checks[0].Files, tt.wantFiles)
		})
	}
}
