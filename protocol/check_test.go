package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCheckTable checks every declaration: a known runner, a struct of
// parameters whose yaml keys, where it has them, are its json keys, and
// defaults that survive the trip through JSON that the plan makes.
func TestCheckTable(t *testing.T) {
	if got := CheckNames(); len(got) == 0 || !slices.IsSorted(got) {
		t.Errorf("checks: %v", got)
	}
	for _, d := range Checks() {
		t.Run(d.Name, func(t *testing.T) {
			if got, ok := LookupCheck(d.Name); !ok || got != d {
				t.Errorf("LookupCheck(%q) = %v, %v", d.Name, got, ok)
			}
			if !slices.Contains(Runners, d.Runner) {
				t.Errorf("runner %q", d.Runner)
			}
			for i := range d.Params.NumField() {
				f := d.Params.Field(i)
				j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				y, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if j == "" || j == "-" {
					t.Errorf("field %s has no json key", f.Name)
				}
				if y != "" && y != j {
					t.Errorf("field %s: yaml key %q, json key %q", f.Name, y, j)
				}
				if j == "timeout" {
					t.Errorf("field %s uses the key timeout, reserved for the check's timeout", f.Name)
				}
			}

			defaults := d.Defaults()
			if reflect.TypeOf(defaults) != d.Params {
				t.Fatalf("defaults are a %T, params a %s", defaults, d.Params)
			}
			js, err := json.Marshal(defaults)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range []string{"", "null", "{}", string(js)} {
				v, err := d.decode(json.RawMessage(raw))
				if err != nil {
					t.Fatalf("decode %q: %v", raw, err)
				}
				if !reflect.DeepEqual(v, defaults) {
					t.Errorf("decode %q: got %+v, want the defaults %+v", raw, v, defaults)
				}
			}
		})
	}
}

func TestCheckDecodeOverDefaults(t *testing.T) {
	p, err := WorkloadCheck.Decode(json.RawMessage(`{"rates":{"http":5},"error_rate":0,"overhead":false}`))
	if err != nil {
		t.Fatal(err)
	}
	// A map given replaces the default whole; zero values given are kept.
	if !reflect.DeepEqual(p.Rates, map[string]int{"http": 5}) || p.ErrorRate != 0 || p.Overhead {
		t.Errorf("given: %+v", p)
	}
	if p.Duration != Duration(10*time.Second) || p.Profile != "standard" || p.Latency != Duration(2*time.Millisecond) {
		t.Errorf("defaults: %+v", p)
	}
	// Defaults are copies: changing one does not change the table.
	p.Rates["http"] = 1
	d := WorkloadCheck.Defaults()
	d.Rates["grpc"] = 1
	if got := WorkloadCheck.Defaults().Rates; got["grpc"] != 5000 || got["http"] != 10000 {
		t.Errorf("defaults changed: %v", got)
	}

	for _, raw := range []string{`{"colour":"blue"}`, `[1]`, `{"rates":"many"}`} {
		if _, err := WorkloadCheck.Decode(json.RawMessage(raw)); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
}

func TestCheckParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		check string
		raw   string
		want  []string // messages, in order; none for valid
		keys  [][]string
	}{
		{"btf", ``, nil, nil},
		{"btf", `{"require":[]}`, []string{"require: expected at least one BTF type name, like task_struct"}, [][]string{{"require"}}},
		{"selftest", `{"action":"panic"}`, nil, nil},
		{"selftest", ``, []string{"missing action: expected one of pass, panic, hang, exit-agent, flood-channel, garbage, clock, random, console-noise"}, [][]string{{"action"}}},
		{"selftest", `{"action":"explode"}`, []string{`action: "explode": expected one of pass, panic, hang, exit-agent, flood-channel, garbage, clock, random, console-noise`}, [][]string{{"action"}}},
		{"verifier", ``, []string{"missing objects: expected a list of BPF object paths"}, [][]string{{"objects"}}},
		{"workload", ``, nil, nil},
		{"workload", `{"rates":{"htp":1,"sql":-1},"error_rate":2}`, []string{
			`rates: unknown protocol "htp" (did you mean "http"?); expected http, grpc, sql, redis`,
			`rates: sql: -1: expected operations per second from 0 to 1000000`,
			`error_rate: 2: expected a share from 0 to 1`,
		}, [][]string{{"rates", "htp"}, {"rates", "sql"}, {"error_rate"}}},
		{"workload", `{"duration":"0s","latency":"-1s","profile":"huge","sample_every":"1m"}`, []string{
			"duration: 0s: expected a positive duration like 10s",
			"latency: -1s: expected a duration like 2s, not negative",
			`profile: "huge": expected one of standard, constrained, long-running`,
			"sample_every: only for profile: long-running",
		}, [][]string{{"duration"}, {"latency"}, {"profile"}, {"sample_every"}}},
		{"workload", `{"server_config":{"postgres":["work_mem = 8MB"],"redsi":["x"]}}`, []string{
			`server_config: unknown server "redsi" (did you mean "redis"?); expected postgres, redis`,
		}, [][]string{{"server_config", "redsi"}}},
		// beyla shares workload's rules for the load.
		{"beyla", `{"binary":"/b"}`, nil, nil},
		{"beyla", `{"binary":"/b","rates":{"http":-5},"scenario":"x","settle":"-1s"}`, []string{
			`scenario: "x": expected one of multi-protocol`,
			`rates: http: -5: expected operations per second from 0 to 1000000`,
			"settle: -1s: expected a duration like 2s, not negative",
		}, [][]string{{"scenario"}, {"rates", "http"}, {"settle"}}},
		{"beyla", ``, []string{"missing binary: expected the path of a Beyla or OBI executable"}, [][]string{{"binary"}}},
	} {
		t.Run(tc.check+tc.raw, func(t *testing.T) {
			d, _ := LookupCheck(tc.check)
			err := d.Validate(json.RawMessage(tc.raw))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *ParamsError
			if !errors.As(err, &pe) {
				t.Fatalf("want a *ParamsError, got %v", err)
			}
			var msgs []string
			var keys [][]string
			for _, p := range pe.Problems {
				msgs, keys = append(msgs, p.Msg), append(keys, p.Key)
			}
			if !slices.Equal(msgs, tc.want) || !reflect.DeepEqual(keys, tc.keys) {
				t.Errorf("got %q at %v\nwant %q at %v", msgs, keys, tc.want, tc.keys)
			}
			if pe.Check != tc.check || !strings.HasPrefix(err.Error(), tc.check+" params: ") {
				t.Errorf("error %q does not name the check", err)
			}
		})
	}
}
