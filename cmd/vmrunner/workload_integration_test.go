package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// workloadRecord is a results.json record of the workload check.
type workloadRecord struct {
	Kernel  string `json:"kernel"`
	Arch    string `json:"arch"`
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Accel   string `json:"accel"`
	Details struct {
		Instrumentation struct {
			ProbeRead  string   `json:"probe_read"`
			Hooks      []string `json:"hooks"`
			Classifier string   `json:"classifier"`
			StartupMS  float64  `json:"startup_ms"`
		} `json:"instrumentation"`
		Protocols map[string]struct {
			Ops          int64            `json:"ops"`
			Errors       int64            `json:"errors"`
			AchievedRate float64          `json:"achieved_rate"`
			Sent         map[string]int64 `json:"sent"`
			Observed     map[string]int64 `json:"observed"`
			Match        bool             `json:"match"`
		} `json:"protocols"`
		Mismatches []string `json:"mismatches"`
		Overhead   *struct {
			Baseline     struct{ Ops int64 } `json:"baseline"`
			Instrumented struct {
				Ops          int64   `json:"ops"`
				BPFRuntimeMS float64 `json:"bpf_runtime_ms"`
			} `json:"instrumented"`
		} `json:"overhead"`
	} `json:"details"`
	Artifacts  []string        `json:"artifacts"`
	RawDetails json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw details beside the decoded ones.
func (w *workloadRecord) UnmarshalJSON(b []byte) error {
	type plain workloadRecord
	var raw struct {
		Details json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(w)); err != nil {
		return err
	}
	w.RawDetails = raw.Details
	return nil
}

func workloadRecords(t *testing.T, out string) ([]workloadRecord, string) {
	t.Helper()
	var r struct {
		Results []workloadRecord `json:"results"`
	}
	dir := readLatest(t, out, &r)
	return r.Results, dir
}

// The real PostgreSQL's initdb takes minutes under TCG on a loaded
// machine (over 2 min on arm64 at load 30): the VMs and each check get 15
// minutes.
const workloadKernels = `
defaults: {memory: 512M, cpus: 1, timeout: 15m, check_timeout: 15m}
kernels:
  - name: "6.1"
    arch: [x86_64, arm64]
    source: {debian: {suite: bookworm}}
`

// buildFixture builds testdata/beyla-fixture for both arches into dir as
// beyla-fixture-{arch}.
func buildFixture(t *testing.T, dir string) {
	t.Helper()
	for arch, goarch := range map[string]string{"x86_64": "amd64", "arm64": "arm64"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "beyla-fixture-"+arch), "../../testdata/beyla-fixture")
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build beyla fixture: %v\n%s", err, out)
		}
	}
}

// TestWorkloadMultiProtocol runs the multi-protocol scenario on Debian 6.1
// for x86_64 and arm64 and checks that the built-in instrumentation counted
// exactly what the real clients sent, per protocol, operation and status;
// and, in the same VMs, that the beyla check runs the Beyla fixture and
// validates its trace lines and Prometheus metrics.
func TestWorkloadMultiProtocol(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	buildFixture(t, dir)
	matrix := filepath.Join(dir, "matrix.yaml")
	writeErr := os.WriteFile(matrix, []byte(workloadKernels+`
checks:
  - workload: {scenario: multi-protocol, duration: 2s, rates: {http: 100, grpc: 50, sql: 50, redis: 50}, error_rate: 0.2}
  - beyla: {binary: "beyla-fixture-{arch}", scenario: multi-protocol, duration: 2s, rates: {http: 100, grpc: 50, sql: 50, redis: 50}}
`), 0o644)
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", matrix, "--out", out)
	if res.code != 0 {
		t.Errorf("exit code %d, want 0", res.code)
	}
	all, dir := workloadRecords(t, out)
	var recs []workloadRecord
	for _, rec := range all {
		switch rec.Check {
		case "workload":
			recs = append(recs, rec)
		case "beyla":
			checkBeylaRecord(t, rec)
		default:
			t.Errorf("unexpected record %s", rec.Check)
		}
	}
	if len(recs) != 2 || len(all) != 4 {
		t.Fatalf("%d workload records of %d, want 2 of 4", len(recs), len(all))
	}
	for _, rec := range recs {
		name := rec.Kernel + "/" + rec.Arch
		if rec.Status != "pass" {
			t.Errorf("%s: status %s: %s", name, rec.Status, rec.Message)
		}
		d := rec.Details
		if d.Instrumentation.ProbeRead != "bpf_probe_read_user" {
			t.Errorf("%s: probe read helper %q, want bpf_probe_read_user on 6.1", name, d.Instrumentation.ProbeRead)
		}
		for _, proto := range []string{"http", "grpc", "sql", "redis"} {
			p, ok := d.Protocols[proto]
			if !ok {
				t.Errorf("%s: no %s results", name, proto)
				continue
			}
			if p.Ops == 0 || p.Errors != 0 || !p.Match || !maps.Equal(p.Sent, p.Observed) {
				t.Errorf("%s %s: ops %d errors %d match %v\nsent     %v\nobserved %v", name, proto, p.Ops, p.Errors, p.Match, p.Sent, p.Observed)
			}
			t.Logf("%s %s: %.0f/s, sent = observed = %v", name, proto, p.AchievedRate, p.Observed)
		}
		obs := func(proto, key string) int64 { return d.Protocols[proto].Observed[key] }
		// The scenario's expectations, beyond sent = observed.
		if obs("http", "status 503") == 0 || obs("http", "status 200") == 0 {
			t.Errorf("%s: http statuses %v: want both 200 and 503", name, d.Protocols["http"].Observed)
		}
		if obs("grpc", "unary calls") == 0 || obs("grpc", "stream calls") == 0 ||
			obs("grpc", "stream responses") != 3*obs("grpc", "stream calls") {
			t.Errorf("%s: grpc %v: want unary and streaming calls, 3 messages per stream", name, d.Protocols["grpc"].Observed)
		}
		for _, verb := range []string{"SELECT", "INSERT", "UPDATE"} {
			if obs("sql", verb+" simple")+obs("sql", verb+" extended") == 0 {
				t.Errorf("%s: no %s observed: %v", name, verb, d.Protocols["sql"].Observed)
			}
		}
		for _, cmd := range []string{"GET", "SET", "DEL"} {
			if obs("redis", cmd) == 0 {
				t.Errorf("%s: no %s observed: %v", name, cmd, d.Protocols["redis"].Observed)
			}
		}
		if d.Overhead == nil || d.Overhead.Baseline.Ops == 0 || d.Overhead.Instrumented.Ops == 0 {
			t.Errorf("%s: overhead phases missing: %+v", name, d.Overhead)
		}
		table, err := os.ReadFile(filepath.Join(dir, rec.Kernel+"-"+rec.Arch, "workload", "counts.txt"))
		if err != nil || !strings.Contains(string(table), "status 503") {
			t.Errorf("%s: counts.txt artifact: %v\n%s", name, err, table)
		}
	}
}

// checkBeylaRecord checks a beyla record: the fixture's spans and metrics
// agree with what was sent on every protocol.
func checkBeylaRecord(t *testing.T, rec workloadRecord) {
	t.Helper()
	name := rec.Kernel + "/" + rec.Arch + "/beyla"
	if rec.Status != "pass" {
		t.Errorf("%s: status %s: %s", name, rec.Status, rec.Message)
	}
	var d struct {
		TraceLines     int `json:"trace_lines"`
		MetricFamilies int `json:"metric_families"`
		Protocols      map[string]struct {
			Expected map[string]int64 `json:"expected"`
			Metrics  map[string]int64 `json:"metrics"`
			Traces   map[string]int64 `json:"traces"`
		} `json:"protocols"`
	}
	if err := json.Unmarshal(rec.RawDetails, &d); err != nil {
		t.Fatalf("%s: details: %v", name, err)
	}
	if d.TraceLines == 0 || d.MetricFamilies != 3 || len(d.Protocols) != 4 {
		t.Errorf("%s: %d trace lines, %d metric families, %d protocols", name, d.TraceLines, d.MetricFamilies, len(d.Protocols))
	}
	for proto, p := range d.Protocols {
		if len(p.Expected) == 0 || !maps.Equal(p.Expected, p.Metrics) || !maps.Equal(p.Expected, p.Traces) {
			t.Errorf("%s %s: expected %v, metrics %v, traces %v", name, proto, p.Expected, p.Metrics, p.Traces)
		}
	}
	t.Logf("%s: %s", name, rec.Message)
}

// TestWorkloadBrokenClassifier runs the same scenario with a classifier that
// parses HTTP status lines one byte off: validation must fail it and name
// HTTP, while the other protocols still match. The same VM loads the build
// for kernels before 5.5 (bpf_probe_read), forced: the fallback must load
// on a real kernel and count the other protocols exactly.
func TestWorkloadBrokenClassifier(t *testing.T) {
	integration(t)
	matrix := writeFile(t, "matrix.yaml", workloadKernels+`
checks:
  - workload: {duration: 2s, rates: {http: 100, grpc: 20, sql: 20, redis: 20}, overhead: false, classifier: broken-status, probe_read: bpf_probe_read}
`)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", matrix, "--out", out, "--arch", "x86_64")
	if res.code != 1 {
		t.Errorf("exit code %d, want 1 (a check failed)", res.code)
	}
	recs, _ := workloadRecords(t, out)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	rec := recs[0]
	if rec.Status != "fail" || !strings.Contains(rec.Message, "http: expected {") || !strings.Contains(rec.Message, "status 503=") {
		t.Errorf("status %s, message %q: want a fail naming http's expected and observed statuses", rec.Status, rec.Message)
	}
	if got := rec.Details.Instrumentation.ProbeRead; got != "bpf_probe_read" {
		t.Errorf("probe read helper %q, want the forced bpf_probe_read", got)
	}
	if rec.Details.Instrumentation.Classifier != "broken-status" {
		t.Errorf("classifier %q, want broken-status", rec.Details.Instrumentation.Classifier)
	}
	for proto, p := range rec.Details.Protocols {
		if want := proto != "http"; p.Match != want {
			t.Errorf("%s: match %v, want %v (sent %v, observed %v)", proto, p.Match, want, p.Sent, p.Observed)
		}
	}
	t.Logf("message: %s", rec.Message)
}

// TestWorkloadBrokenServerConfig gives the real PostgreSQL a setting it
// refuses: the workload check must be an error that quotes PostgreSQL's own
// log, the log must be an artifact, and the VM must go on with its next
// check.
func TestWorkloadBrokenServerConfig(t *testing.T) {
	integration(t)
	matrix := writeFile(t, "matrix.yaml", workloadKernels+`
checks:
  - workload: {duration: 1s, rates: {http: 10, grpc: 5, sql: 5, redis: 5}, overhead: false, server_config: {postgres: ["shared_buffers = lots"]}}
  - btf: {require: [task_struct]}
`)
	out := t.TempDir()
	res := vmrunnerCLI(t, "run", matrix, "--out", out, "--arch", "x86_64")
	if res.code == 0 {
		t.Errorf("exit code 0, want a failing run")
	}
	recs, dir := workloadRecords(t, out)
	status := map[string]string{}
	for _, rec := range recs {
		status[rec.Check] = rec.Status
		if rec.Check != "workload" {
			continue
		}
		if rec.Status != "error" || !strings.Contains(rec.Message, `invalid value for parameter "shared_buffers": "lots"`) {
			t.Errorf("workload: status %s, message %q: want an error quoting postgres's log", rec.Status, rec.Message)
		}
		log, err := os.ReadFile(filepath.Join(dir, rec.Kernel+"-"+rec.Arch, "workload", "servers", "postgres.log"))
		if err != nil || !strings.Contains(string(log), "shared_buffers") {
			t.Errorf("postgres.log artifact: %v\n%s", err, log)
		}
		t.Logf("message: %s", rec.Message)
	}
	if status["workload"] != "error" || status["btf"] != "pass" {
		t.Errorf("statuses %v, want workload error and btf pass (the VM carries on)", status)
	}
}
