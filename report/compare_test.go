package report

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"5%", 0.05, false}, {"5", 0.05, false}, {"0.5%", 0.005, false}, {" 10% ", 0.10, false}, {"0", 0, false},
		{"-1%", 0, true}, {"five", 0, true}, {"", 0, true}, {"NaN", 0, true}, {"Inf%", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseThreshold(tt.in)
		if (err != nil) != tt.wantErr || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("ParseThreshold(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFigures(t *testing.T) {
	got := figures(json.RawMessage(`{"types":100643,"found":["a"],"config":{"BPF":"y"},"present":true,
		"workload":{"http":{"p99_ms":1.5,"throughput":1200},"hist":[1,2.5]},"big":12345678901234567890}`))
	want := map[string]float64{"details.types": 100643, "details.workload.http.p99_ms": 1.5, "details.workload.http.throughput": 1200,
		"details.workload.hist[0]": 1, "details.workload.hist[1]": 2.5, "details.big": 12345678901234567890}
	if len(got) != len(want) {
		t.Errorf("figures: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := len(figures(json.RawMessage(`not json`))); n != 0 {
		t.Errorf("figures of invalid JSON: %d", n)
	}
}

func TestCompare(t *testing.T) {
	base := sampleRun(t).Report
	clone := func(edit func([]results.Record) []results.Record) results.Report {
		r := base
		r.Results = edit(slices.Clone(base.Results))
		return r
	}
	details := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name        string
		new         results.Report
		opts        CompareOptions
		regressions int
		verdicts    []string
		figures     []string
		added       []string
		removed     []string
		output      []string
	}{
		{name: "same run", new: base, opts: CompareOptions{Threshold: 0.05}, output: []string{"no changes", "regressions: 0"}},
		{
			name: "pass to fail",
			new: clone(func(rs []results.Record) []results.Record {
				rs[2].Status, rs[2].Message = protocol.StatusFail, "missing BTF types: sock"
				return rs
			}),
			opts: CompareOptions{Threshold: 0.05}, regressions: 1,
			verdicts: []string{"6.1/x86_64 btf pass→fail regression"},
			output:   []string{"6.1/x86_64 btf: pass → fail MISSING_BTF  REGRESSION  (missing BTF types: sock)", "regressions: 1"},
		},
		{
			name: "fail to pass and error to fail",
			new: clone(func(rs []results.Record) []results.Record {
				rs[1].Status = protocol.StatusPass
				rs[4].Status, rs[4].ErrorKind = protocol.StatusFail, ""
				return rs
			}),
			opts:     CompareOptions{Threshold: 0.05},
			verdicts: []string{"5.10/x86_64 btf fail→pass", "6.1/arm64 btf error→fail"},
		},
		{
			name: "pass to skip is worse",
			new: clone(func(rs []results.Record) []results.Record {
				rs[0].Status = protocol.StatusSkip
				return rs
			}),
			opts: CompareOptions{Threshold: 0.05}, regressions: 1,
			verdicts: []string{"6.12/x86_64 btf pass→skip regression"},
		},
		{
			name: "added and removed",
			new: clone(func(rs []results.Record) []results.Record {
				r := rs[0]
				r.Check = "features"
				return append(rs[:len(rs)-1], r)
			}),
			opts:    CompareOptions{Threshold: 0.05},
			added:   []string{"6.12/x86_64 features"},
			removed: []string{"6.1/arm64 verifier/probes/loop"},
		},
		{
			name: "counts move either way, reported only",
			new: clone(func(rs []results.Record) []results.Record {
				rs[2].Details = details(`{"vmlinux_present":true,"types":80000,"module_btf":4}`) // -20.5%
				rs[3].Details = details(`{"insns_processed":132000,"object":"probes.o"}`)        // +0.7%: under the threshold
				return rs
			}),
			opts:    CompareOptions{Threshold: 0.05},
			figures: []string{"6.1/x86_64 btf details.types 100643→80000"},
			output:  []string{"6.1/x86_64 btf details.types: 100643 → 80000 (-20.5%, either way)", "regressions: 0"},
		},
		{
			name: "known directions",
			new: clone(func(rs []results.Record) []results.Record {
				rs[0].Details = details(`{"types":113790,"workload":{"http":{"p99_ms":1.2,"throughput":900},"grpc":{"p99_ms":0.5,"throughput":2000}}}`)
				return rs
			}),
			opts:        CompareOptions{Threshold: 0.05},
			regressions: 2,
			figures: []string{
				"6.12/x86_64 btf details.workload.grpc.p99_ms 1→0.5",
				"6.12/x86_64 btf details.workload.grpc.throughput 1000→2000",
				"6.12/x86_64 btf details.workload.http.p99_ms 1→1.2 regression",
				"6.12/x86_64 btf details.workload.http.throughput 1000→900 regression",
			},
		},
		{
			name: "timings only when asked",
			new: clone(func(rs []results.Record) []results.Record {
				rs[0].DurationMS, rs[0].BootMS = 2400, 2350
				return rs
			}),
			opts: CompareOptions{Threshold: 0.05},
		},
		{
			name: "timings when asked",
			new: clone(func(rs []results.Record) []results.Record {
				rs[0].DurationMS, rs[0].BootMS = 2400, 2350 // +100%, +2.2%
				return rs
			}),
			opts:        CompareOptions{Threshold: 0.05, Timings: true},
			regressions: 1,
			figures:     []string{"6.12/x86_64 btf duration_ms 1200→2400 regression"},
		},
		{
			name: "a restore is not a boot",
			new: clone(func(rs []results.Record) []results.Record {
				rs[0].BootMS, rs[0].Boot = 5000, "snapshot" // a boot of 5 s would be a regression
				return rs
			}),
			opts: CompareOptions{Threshold: 0.05, Timings: true},
		},
		{
			name: "timings in details only when asked",
			new: clone(func(rs []results.Record) []results.Record {
				rs[3].Details = details(`{"insns_processed":131072,"object":"probes.o","verification_time_ns":9000000}`)
				return rs
			}),
			opts: CompareOptions{Threshold: 0.05},
		},
		{
			name: "timings in details when asked",
			new: clone(func(rs []results.Record) []results.Record {
				rs[3].Details = details(`{"insns_processed":131072,"object":"probes.o","verification_time_ns":9000000}`)
				return rs
			}),
			opts:    CompareOptions{Threshold: 0.05, Timings: true},
			figures: []string{"6.1/x86_64 verifier/probes/loop details.verification_time_ns 1000000→9000000"},
		},
		{
			name: "reason changed",
			new: clone(func(rs []results.Record) []results.Record {
				rs[3].Reason, rs[3].ReasonDetail = protocol.ReasonTooComplex, "BPF program is too large. Processed 1000001 insn"
				return rs
			}),
			opts:     CompareOptions{Threshold: 0.05},
			verdicts: []string{"6.1/x86_64 verifier/probes/loop fail→fail"},
			output:   []string{"6.1/x86_64 verifier/probes/loop: fail CHECK_FAILED → fail TOO_COMPLEX  (", "regressions: 0"},
		},
		{
			name: "zero threshold",
			new: clone(func(rs []results.Record) []results.Record {
				rs[3].Details = details(`{"insns_processed":131073,"object":"probes.o"}`)
				return rs
			}),
			opts:    CompareOptions{Threshold: 0},
			figures: []string{"6.1/x86_64 verifier/probes/loop details.insns_processed 131072→131073"},
		},
	}
	oldWorkload := base
	oldWorkload.Results = slices.Clone(base.Results)
	oldWorkload.Results[0].Details = details(`{"types":113790,"workload":{"http":{"p99_ms":1,"throughput":1000},"grpc":{"p99_ms":1,"throughput":1000}}}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := base
			if tt.name == "known directions" {
				old = oldWorkload
			}
			c := Compare(old, tt.new, tt.opts)
			if c.Regressions() != tt.regressions {
				t.Errorf("regressions = %d, want %d", c.Regressions(), tt.regressions)
			}
			var verdicts, figs, added, removed []string
			for _, v := range c.Verdicts {
				s := v.String() + " " + string(v.Old) + "→" + string(v.New)
				if v.Regression {
					s += " regression"
				}
				verdicts = append(verdicts, s)
			}
			for _, f := range c.Figures {
				s := f.String() + " " + f.Name + " " + num(f.Old) + "→" + num(f.New)
				if f.Regression {
					s += " regression"
				}
				figs = append(figs, s)
			}
			for _, k := range c.Added {
				added = append(added, k.String())
			}
			for _, k := range c.Removed {
				removed = append(removed, k.String())
			}
			for _, l := range []struct {
				what      string
				got, want []string
			}{{"verdicts", verdicts, tt.verdicts}, {"figures", figs, tt.figures}, {"added", added, tt.added}, {"removed", removed, tt.removed}} {
				if !slices.Equal(l.got, l.want) {
					t.Errorf("%s:\n  got  %q\n  want %q", l.what, l.got, l.want)
				}
			}
			var b bytes.Buffer
			if err := c.Write(&b); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.output {
				if !strings.Contains(b.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, b.String())
				}
			}
		})
	}
}

func TestCompareKernelChange(t *testing.T) {
	old := sampleRun(t).Report
	cur := old
	cur.Results = slices.Clone(old.Results)
	for i := range cur.Results {
		if cur.Results[i].Kernel == "6.1" && cur.Results[i].Arch == "x86_64" {
			cur.Results[i].KernelRelease = "6.1.0-51-amd64"
			s := *cur.Results[i].Source
			s.SHA256 = strings.Repeat("cd", 32)
			cur.Results[i].Source = &s
		}
	}
	c := Compare(old, cur, CompareOptions{Threshold: DefaultThreshold})
	if len(c.Kernels) != 1 || c.Kernels[0].Old != "6.1.0-50-amd64 (abababababab)" || c.Kernels[0].New != "6.1.0-51-amd64 (cdcdcdcdcdcd)" {
		t.Errorf("kernel changes: %+v", c.Kernels)
	}
	if c.Regressions() != 0 {
		t.Errorf("a rebuilt kernel alone is no regression")
	}
}

func TestFigureKinds(t *testing.T) {
	tests := []struct {
		name   string
		dir    Direction
		timing bool
	}{
		{"details.types", Either, false},
		{"details.insns_processed", Either, false},
		{"details.verification_time_ns", Either, true},
		{"details.workload.http.p99_ms", LowerIsBetter, false},
		{"details.workload.http.throughput", HigherIsBetter, false},
		{"details.hist[2]", Either, false},
		{"details.runs[0].elapsed", Either, true},
		{"duration_ms", LowerIsBetter, false},
	}
	for _, tt := range tests {
		if d, timing := direction(tt.name), isTiming(tt.name); d != tt.dir || timing != tt.timing {
			t.Errorf("%s: direction %v timing %v, want %v %v", tt.name, d, timing, tt.dir, tt.timing)
		}
	}
}
