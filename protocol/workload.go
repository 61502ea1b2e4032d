package protocol

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/spelling"
)

// WorkloadParams configures the "workload" check.
type WorkloadParams struct {
	// Scenario is "multi-protocol" (the only one).
	Scenario string `json:"scenario" yaml:"scenario"`
	// Duration is the length of each load phase.
	Duration Duration `json:"duration" yaml:"duration"`
	// Rates are target operations per second by protocol: http, grpc,
	// sql, redis. A protocol at 0 or left out is off.
	Rates map[string]int `json:"rates" yaml:"rates"`
	// ErrorRate is the share of HTTP responses that are 5xx.
	ErrorRate float64 `json:"error_rate" yaml:"error_rate"`
	// Latency is what the HTTP server adds to /api/slow.
	Latency Duration `json:"latency,omitempty" yaml:"latency"`
	// Profile is "standard", "constrained" or "long-running".
	Profile string `json:"profile" yaml:"profile"`
	// Overhead runs the load a first time without instrumentation.
	Overhead bool `json:"overhead" yaml:"overhead"`
	// SampleEvery is the RSS and fd sampling period of long-running
	// (0: the guest takes a twentieth of the duration).
	SampleEvery Duration `json:"sample_every,omitempty" yaml:"sample_every"`
	// Classifier "broken-status" selects a deliberately wrong HTTP status
	// parser: a test of the validation, not for user matrices.
	Classifier string `json:"classifier,omitempty" yaml:"classifier"`
	// ProbeRead "bpf_probe_read" forces the build for kernels before 5.5
	// (a test of the fallback); empty picks by kernel.
	ProbeRead string `json:"probe_read,omitempty" yaml:"probe_read"`
	// ServerConfig are lines appended to a real server's configuration
	// file, by server: "postgres" (postgresql.conf), "redis"
	// (redis.conf). A line the server refuses makes the check an error
	// that quotes the server's log.
	ServerConfig map[string][]string `json:"server_config,omitempty" yaml:"server_config"`
}

// WorkloadServerNames are the servers ServerConfig may name.
var WorkloadServerNames = []string{"postgres", "redis"}

// WorkloadScenarios, WorkloadProfiles, WorkloadProtocols and
// WorkloadClassifiers are the accepted values.
var (
	WorkloadScenarios   = []string{"multi-protocol"}
	WorkloadProfiles    = []string{"standard", "constrained", "long-running"}
	WorkloadProtocols   = []string{"http", "grpc", "sql", "redis"}
	WorkloadClassifiers = []string{"", "broken-status"}
	WorkloadProbeReads  = []string{"", "bpf_probe_read_user", "bpf_probe_read"}
)

// maxWorkloadRate bounds a protocol's rate, in operations per second.
const maxWorkloadRate = 1_000_000

// WorkloadCheck is the "workload" check: the multi-protocol scenario
// observed by the built-in eBPF instrumentation. Its defaults are the RFD's
// rates (SQL's is its, Redis's ours) and share of 5xx.
var WorkloadCheck = declare("workload", RunnerWorkload, WorkloadParams{
	Scenario:  "multi-protocol",
	Duration:  Duration(10 * time.Second),
	Rates:     map[string]int{"http": 10000, "grpc": 5000, "sql": 1000, "redis": 1000},
	ErrorRate: 0.1,
	Latency:   Duration(2 * time.Millisecond),
	Profile:   "standard",
	Overhead:  true,
})

// Validate implements paramsValidator.
func (p WorkloadParams) Validate() []ParamProblem {
	probs := validateLoad(p.Scenario, p.Duration, p.Rates, p.ErrorRate)
	probs = append(probs, nonNegative("latency", p.Latency)...)
	probs = append(probs, oneOf("profile", p.Profile, WorkloadProfiles)...)
	probs = append(probs, oneOf("classifier", p.Classifier, WorkloadClassifiers)...)
	probs = append(probs, oneOf("probe_read", p.ProbeRead, WorkloadProbeReads)...)
	probs = append(probs, nonNegative("sample_every", p.SampleEvery)...)
	for _, name := range slices.Sorted(maps.Keys(p.ServerConfig)) {
		if !slices.Contains(WorkloadServerNames, name) {
			probs = append(probs, ParamProblem{Key: []string{"server_config", name}, AtKey: true, Msg: fmt.Sprintf("server_config: unknown server %q%s; expected %s",
				name, spelling.DidYouMean(name, WorkloadServerNames), strings.Join(WorkloadServerNames, ", "))})
		}
	}
	if p.SampleEvery != 0 && p.Profile != "long-running" {
		probs = append(probs, ParamProblem{Key: []string{"sample_every"}, Msg: "sample_every: only for profile: long-running"})
	}
	return probs
}

// validateLoad checks what the workload and beyla checks share: the
// scenario and the load that drives it.
func validateLoad(scenario string, d Duration, rates map[string]int, errorRate float64) []ParamProblem {
	probs := oneOf("scenario", scenario, WorkloadScenarios)
	if d <= 0 {
		probs = append(probs, ParamProblem{Key: []string{"duration"}, Msg: fmt.Sprintf("duration: %s: expected a positive duration like 10s", time.Duration(d))})
	}
	for _, name := range slices.Sorted(maps.Keys(rates)) {
		if !slices.Contains(WorkloadProtocols, name) {
			probs = append(probs, ParamProblem{Key: []string{"rates", name}, AtKey: true, Msg: fmt.Sprintf("rates: unknown protocol %q%s; expected %s",
				name, spelling.DidYouMean(name, WorkloadProtocols), strings.Join(WorkloadProtocols, ", "))})
		} else if r := rates[name]; r < 0 || r > maxWorkloadRate {
			probs = append(probs, ParamProblem{Key: []string{"rates", name}, Msg: fmt.Sprintf("rates: %s: %d: expected operations per second from 0 to %d", name, r, maxWorkloadRate)})
		}
	}
	if errorRate < 0 || errorRate > 1 || math.IsNaN(errorRate) {
		probs = append(probs, ParamProblem{Key: []string{"error_rate"}, Msg: fmt.Sprintf("error_rate: %v: expected a share from 0 to 1", errorRate)})
	}
	return probs
}

func nonNegative(key string, d Duration) []ParamProblem {
	if d < 0 {
		return []ParamProblem{{Key: []string{key}, Msg: fmt.Sprintf("%s: %s: expected a duration like 2s, not negative", key, time.Duration(d))}}
	}
	return nil
}

// WorkloadDetails is what the "workload" check reports in Result.Details.
type WorkloadDetails struct {
	Scenario   string  `json:"scenario"`
	Profile    string  `json:"profile"`
	DurationMS int64   `json:"duration_ms"` // of each phase
	VCPUs      int     `json:"vcpus"`
	MemTotalMB float64 `json:"mem_total_mb"`
	// Instrumentation says how the built-in eBPF instrumentation ran.
	Instrumentation WorkloadInstrumentation `json:"instrumentation"`
	// Servers are the real servers the SQL and Redis load ran against,
	// by name ("postgres", "redis").
	Servers map[string]WorkloadServer `json:"servers,omitempty"`
	// Protocols are the sent and observed counts of the instrumented phase.
	Protocols map[string]WorkloadProtocol `json:"protocols"`
	// Mismatches are one line per protocol whose counts differ.
	Mismatches []string `json:"mismatches"`
	// Overhead compares the two phases (when params.overhead).
	Overhead *WorkloadOverhead `json:"overhead,omitempty"`
	// Samples are the long-running profile's RSS and fd samples.
	Samples []WorkloadSample `json:"samples,omitempty"`
	// Growth is their growth per hour, in percent.
	RSSGrowthPctPerHour float64 `json:"rss_growth_pct_per_hour"`
	FDGrowthPctPerHour  float64 `json:"fd_growth_pct_per_hour"`
	// Flags list figures outside the RFD's targets.
	Flags []string `json:"flags"`
}

// WorkloadServer is a real server of the workload.
type WorkloadServer struct {
	Package string `json:"package"`
	Version string `json:"version"`
	// StartMS is the time from starting it (initdb included) to its
	// first answer.
	StartMS float64 `json:"start_ms"`
}

// WorkloadInstrumentation is the built-in instrumentation's setup.
type WorkloadInstrumentation struct {
	// ProbeRead is bpf_probe_read_user, or bpf_probe_read on kernels
	// without it.
	ProbeRead string   `json:"probe_read"`
	Hooks     []string `json:"hooks"`
	// Classifier is "standard" or the test-only "broken-status".
	Classifier string  `json:"classifier"`
	StartupMS  float64 `json:"startup_ms"`
	// KernelBTFMS, LoadMS and AttachMS split StartupMS: loading kernel
	// BTF, loading programs and maps, attaching to the tracepoints.
	KernelBTFMS float64 `json:"kernel_btf_ms"`
	// KernelBTF says where the kernel types of the CO-RE relocations came
	// from: "vmlinux BTF" or "external BTF from <file>".
	KernelBTF string  `json:"kernel_btf,omitempty"`
	LoadMS    float64 `json:"load_ms"`
	AttachMS  float64 `json:"attach_ms"`
	// Stats is how BPF run time was enabled, or why it is absent.
	Stats    string                `json:"stats"`
	Programs []WorkloadProgramRuns `json:"programs,omitempty"`
}

// WorkloadProgramRuns is one program's kernel run-time accounting.
type WorkloadProgramRuns struct {
	Name      string `json:"name"`
	RunCount  uint64 `json:"run_count"`
	RuntimeNS int64  `json:"runtime_ns"`
}

// WorkloadProtocol is one protocol in the instrumented phase.
type WorkloadProtocol struct {
	TargetRate   int              `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	Ops          int64            `json:"ops"`
	Errors       int64            `json:"errors"`
	FirstError   string           `json:"first_error,omitempty"`
	P50MS        float64          `json:"p50_ms"`
	P99MS        float64          `json:"p99_ms"`
	Sent         map[string]int64 `json:"sent"`
	Observed     map[string]int64 `json:"observed"`
	Match        bool             `json:"match"`
}

// WorkloadPhase is one run of the load.
type WorkloadPhase struct {
	Instrumented bool    `json:"instrumented"`
	Ops          int64   `json:"ops"`
	Throughput   float64 `json:"throughput"` // operations per second, all protocols
	// P50MS and P99MS are by protocol.
	P50MS map[string]float64 `json:"p50_ms"`
	P99MS map[string]float64 `json:"p99_ms"`
	// CPU time of the workload process (getrusage) during the phase.
	CPUUserMS  float64 `json:"cpu_user_ms"`
	CPUSysMS   float64 `json:"cpu_sys_ms"`
	CPUPerOpUS float64 `json:"cpu_per_op_us"`
	// BPFRuntimeMS is the programs' run time (kernel.bpf_stats_enabled).
	BPFRuntimeMS float64 `json:"bpf_runtime_ms,omitempty"`
	// MaxRSSMB is the process's peak RSS at the end of the phase.
	MaxRSSMB float64 `json:"max_rss_mb"`
}

// WorkloadOverhead compares the phases against the RFD's targets: CPU
// overhead < 2%, P99 impact < 1 ms, memory 50–150 MB, startup < 5 s.
type WorkloadOverhead struct {
	Baseline     WorkloadPhase `json:"baseline"`
	Instrumented WorkloadPhase `json:"instrumented"`
	// CPUPerOpPct is the change of CPU time per operation, in percent.
	CPUPerOpPct float64 `json:"cpu_per_op_pct"`
	// BPFCPUPct is the programs' run time as a share of the workload's
	// CPU time, when the kernel reports it.
	BPFCPUPct float64 `json:"bpf_cpu_pct,omitempty"`
	// P99DeltaMS is the largest P99 increase over the protocols.
	P99DeltaMS float64 `json:"p99_delta_ms"`
	// MemoryMB is the instrumentation's memory: BPF maps and programs
	// (memlock) plus the process's RSS growth between the phases.
	MemoryMB  float64 `json:"memory_mb"`
	StartupMS float64 `json:"startup_ms"`
	// ThroughputPct is the change of throughput, in percent.
	ThroughputPct float64 `json:"throughput_pct"`
}

// WorkloadSample is one long-running sample.
type WorkloadSample struct {
	AtMS  int64   `json:"at_ms"`
	RSSMB float64 `json:"rss_mb"`
	FDs   int     `json:"fds"`
}
