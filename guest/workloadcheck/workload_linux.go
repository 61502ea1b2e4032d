package workloadcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/guest/kernelbtf"
	"github.com/vmrunner/vmrunner/instrument"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/workload"
)

func init() { Checks.Add(protocol.WorkloadCheck.Def(), checkWorkload) }

// checkWorkload runs the check with the real servers and attaches their
// logs, whatever the outcome.
func checkWorkload(ctx context.Context, params json.RawMessage) (guest.Outcome, error) {
	var real *realServers
	o, err := runWorkload(ctx, params, &real)
	o.Artifacts = append(o.Artifacts, real.artifacts("workload")...)
	return o, err
}

// runWorkload is the "workload" check: the multi-protocol scenario. It
// starts the servers (PostgreSQL and Redis real, see servers_linux.go),
// optionally runs the load once without
// instrumentation (the overhead baseline), then loads the built-in eBPF
// instrumentation, runs the same load again and compares what the
// programs counted with what the clients sent, exactly.
func runWorkload(ctx context.Context, params json.RawMessage, real **realServers) (guest.Outcome, error) {
	p, err := protocol.WorkloadCheck.Params(params)
	if err != nil {
		return guest.Outcome{}, err
	}
	d := newWorkloadDetails(p)
	o := guest.Outcome{Details: d}
	kernelTypes, btfChoice, err := kernelbtf.KernelTypes()
	if err != nil {
		return o, err
	}
	if btfChoice.Path == "" {
		// Degrade, as the RFD asks of old kernels: without kernel types
		// the CO-RE instrumentation cannot load; say so, never fail.
		o.Status = protocol.StatusSkip
		o.Message = "kernel has no BTF (vmlinux BTF absent) and no external BTF was given: the CO-RE instrumentation cannot load; give the source a btf file (btfhub's <uname -r>.btf.tar.xz)"
		return o, nil
	}
	d.Instrumentation.KernelBTF = btfChoice.Describe()

	srvCfg := workload.ServerConfig{ErrorRate: p.ErrorRate, Latency: time.Duration(p.Latency), Seed: 1}
	loadCfg := workload.Config{
		Duration: time.Duration(p.Duration), Rates: p.Rates, ErrorRate: p.ErrorRate,
		Latency: time.Duration(p.Latency), Seed: 2,
	}
	srv, rs, err := startServers(ctx, srvCfg, p.ServerConfig)
	*real = rs
	if err != nil {
		return o, err
	}
	defer rs.Close()
	defer srv.Close()
	d.Servers = rs.details

	var baseline *protocol.WorkloadPhase
	if p.Overhead {
		ph, _, err := runPhase(ctx, srv, loadCfg, nil, nil)
		if err != nil {
			return o, err
		}
		baseline = &ph
	}

	stats, how, err := instrument.EnableStats()
	if err != nil {
		d.Instrumentation.Stats = "unavailable: " + err.Error()
	} else {
		d.Instrumentation.Stats = how
		defer stats.Close()
	}
	rssBefore := currentRSSMB()
	obs, startup, probeRead, err := loadInstrumentation(p, srv, rs.serverTGIDs(), kernelTypes, d)
	if err != nil {
		return o, err
	}
	defer obs.Close()

	samples := newSampler(p)
	instrumented, sent, err := runPhase(ctx, srv, loadCfg, obs, samples)
	if err != nil {
		return o, err
	}
	if err := tally(d, obs, sent); err != nil {
		return o, err
	}
	if baseline != nil {
		d.Overhead = overhead(*baseline, instrumented, startup, obs, rssBefore)
		d.Flags = append(d.Flags, overheadFlags(d.Overhead)...)
	}
	if samples != nil {
		steadyGrowth(d, samples, time.Duration(p.Duration))
	}
	if p.Profile == "constrained" && d.VCPUs > 1 {
		d.Flags = append(d.Flags, fmt.Sprintf("constrained profile on %d vCPUs: set cpus: 1 (and a small memory) on the kernel entry", d.VCPUs))
	}
	o.Artifacts = append(o.Artifacts, protocol.Artifact{Check: "workload", Name: "workload/counts.txt", Data: countsTable(d.Protocols)})
	workloadVerdict(&o, d, probeRead)
	return o, nil
}

// startServers starts the workload's servers on loopback: the real
// PostgreSQL and Redis (conf: extra configuration lines by server), then
// the others, with the memlock limit lifted for the eBPF programs that
// will watch them. The real servers are returned even on error, for their
// logs; the caller closes them.
func startServers(ctx context.Context, cfg workload.ServerConfig, conf map[string][]string) (*workload.Servers, *realServers, error) {
	if err := guest.RemoveMemlock(); err != nil {
		return nil, nil, err
	}
	if err := guest.LoopbackUp(); err != nil {
		return nil, nil, err
	}
	rs, err := startRealServers(ctx, conf)
	if err != nil {
		return nil, rs, fmt.Errorf("start servers: %w", err)
	}
	cfg.PG, cfg.Redis = rs.PGAddr, rs.RedisAddr
	srv, err := workload.Start(ctx, cfg)
	if err != nil {
		rs.Close()
		return nil, rs, fmt.Errorf("start servers: %w", err)
	}
	return srv, rs, nil
}

// tally puts in d what obs counted against what the clients sent, and how
// long each of its programs ran.
func tally(d *protocol.WorkloadDetails, obs *instrument.Observer, sent map[string]workload.Result) error {
	counts, err := obs.Counts()
	if err != nil {
		return err
	}
	if progs, ok := obs.Stats(); ok {
		for _, s := range progs {
			d.Instrumentation.Programs = append(d.Instrumentation.Programs, protocol.WorkloadProgramRuns{
				Name: s.Name, RunCount: s.RunCount, RuntimeNS: s.Runtime.Nanoseconds(),
			})
		}
	}
	d.Mismatches = compareCounts(sent, instrument.Observed(counts), d.Protocols)
	return nil
}

// newWorkloadDetails is the details of a workload check with params p,
// before anything ran.
func newWorkloadDetails(p protocol.WorkloadParams) *protocol.WorkloadDetails {
	classifier := "standard"
	if p.Classifier != "" {
		classifier = p.Classifier
	}
	d := &protocol.WorkloadDetails{
		Scenario: p.Scenario, Profile: p.Profile, DurationMS: time.Duration(p.Duration).Milliseconds(),
		VCPUs: runtime.NumCPU(), MemTotalMB: memTotalMB(), Protocols: map[string]protocol.WorkloadProtocol{},
		Mismatches: []string{}, Flags: []string{},
	}
	d.Instrumentation.Classifier = classifier
	return d
}

// loadInstrumentation loads and attaches the built-in instrumentation for
// srv's ports, saying in d how long it took; it returns the observer, the
// time from load to attached, and how it reads memory.
func loadInstrumentation(p protocol.WorkloadParams, srv *workload.Servers, serverTGIDs []uint32, kernelTypes *btf.Spec, d *protocol.WorkloadDetails) (*instrument.Observer, time.Duration, string, error) {
	start := time.Now()
	obs, err := instrument.Load(instrument.Config{
		TGID: uint32(os.Getpid()), ServerTGIDs: serverTGIDs, Ports: instrument.Ports(srv), BrokenStatus: p.Classifier == "broken-status",
		Legacy: p.ProbeRead == "bpf_probe_read", KernelTypes: kernelTypes,
	})
	if err != nil {
		return nil, 0, "", fmt.Errorf("load instrumentation: %w", err)
	}
	startup := time.Since(start)
	info := obs.Info()
	d.Instrumentation.ProbeRead, d.Instrumentation.Hooks = info.ProbeRead, info.Hooks
	d.Instrumentation.StartupMS, d.Instrumentation.KernelBTFMS = ms(startup), ms(info.KernelBTF)
	d.Instrumentation.LoadMS, d.Instrumentation.AttachMS = ms(info.Load), ms(info.Attach)
	return obs, startup, info.ProbeRead, nil
}

// newSampler samples the guest's memory and descriptors through a
// long-running profile; nil for the others.
func newSampler(p protocol.WorkloadParams) *sampler {
	if p.Profile != "long-running" {
		return nil
	}
	every := time.Duration(p.SampleEvery)
	if every <= 0 {
		every = max(time.Duration(p.Duration)/20, time.Second)
	}
	return &sampler{every: every}
}

// overhead compares the instrumented phase with the baseline.
func overhead(baseline, instrumented protocol.WorkloadPhase, startup time.Duration, obs *instrument.Observer, rssBefore float64) *protocol.WorkloadOverhead {
	ov := &protocol.WorkloadOverhead{Baseline: baseline, Instrumented: instrumented, StartupMS: ms(startup)}
	if baseline.CPUPerOpUS > 0 {
		ov.CPUPerOpPct = round2((instrumented.CPUPerOpUS - baseline.CPUPerOpUS) / baseline.CPUPerOpUS * 100)
	}
	if cpu := instrumented.CPUUserMS + instrumented.CPUSysMS; cpu > 0 && instrumented.BPFRuntimeMS > 0 {
		ov.BPFCPUPct = round2(instrumented.BPFRuntimeMS / cpu * 100)
	}
	if baseline.Throughput > 0 {
		ov.ThroughputPct = round2((instrumented.Throughput - baseline.Throughput) / baseline.Throughput * 100)
	}
	for name, p99 := range instrumented.P99MS {
		ov.P99DeltaMS = max(ov.P99DeltaMS, round2(p99-baseline.P99MS[name]))
	}
	memlock, _ := obs.Memlock()
	ov.MemoryMB = round2(float64(memlock)/(1<<20) + max(0, currentRSSMB()-rssBefore))
	return ov
}

// steadyGrowth puts the samples of a run of dur in d, with the growth of
// memory and descriptors per hour, flagged over the target.
func steadyGrowth(d *protocol.WorkloadDetails, samples *sampler, dur time.Duration) {
	d.Samples = samples.samples
	// Growth is measured in the steady state: after a warm-up of a tenth
	// of the run (at least one period) and before the last twentieth, when
	// the clients close their connections.
	from, to := max(dur/10, samples.every), dur-dur/20
	var steady []protocol.WorkloadSample
	for _, s := range samples.samples {
		if at := time.Duration(s.AtMS) * time.Millisecond; at >= from && at <= to {
			steady = append(steady, s)
		}
	}
	if len(steady) >= 2 {
		first, last := steady[0], steady[len(steady)-1]
		elapsed := time.Duration(last.AtMS-first.AtMS) * time.Millisecond
		d.RSSGrowthPctPerHour = growthPerHour(first.RSSMB, last.RSSMB, elapsed)
		d.FDGrowthPctPerHour = growthPerHour(float64(first.FDs), float64(last.FDs), elapsed)
	}
	if d.RSSGrowthPctPerHour > targetGrowthPctH {
		d.Flags = append(d.Flags, fmt.Sprintf("rss: %+.1f%%/h (target <= 10%%/h)", d.RSSGrowthPctPerHour))
	}
	if d.FDGrowthPctPerHour > targetGrowthPctH {
		d.Flags = append(d.Flags, fmt.Sprintf("fds: %+.1f%%/h (target <= 10%%/h)", d.FDGrowthPctPerHour))
	}
}

// workloadVerdict is the check's status and message: a pass when every
// count observed is the count sent.
func workloadVerdict(o *guest.Outcome, d *protocol.WorkloadDetails, probeRead string) {
	if len(d.Mismatches) > 0 {
		o.Status = protocol.StatusFail
		o.Message = "observed counts differ from sent: " + strings.Join(d.Mismatches, "; ")
		return
	}
	o.Status = protocol.StatusPass
	var rates []string
	for _, name := range workload.Protocols {
		if r, ok := d.Protocols[name]; ok {
			rates = append(rates, fmt.Sprintf("%s %.0f/s", name, r.AchievedRate))
		}
	}
	o.Message = fmt.Sprintf("observed = sent for %d protocols (%s; %s)", len(d.Protocols), strings.Join(rates, ", "), probeRead)
	if len(d.Flags) > 0 {
		o.Message += fmt.Sprintf("; %d figures outside targets: %s", len(d.Flags), strings.Join(d.Flags, "; "))
	}
}

// runPhase runs the load once and measures it.
func runPhase(ctx context.Context, srv *workload.Servers, cfg workload.Config, obs *instrument.Observer, s *sampler) (protocol.WorkloadPhase, map[string]workload.Result, error) {
	ph := protocol.WorkloadPhase{Instrumented: obs != nil, P50MS: map[string]float64{}, P99MS: map[string]float64{}}
	var bpfBefore time.Duration
	if obs != nil {
		bpfBefore = bpfRuntime(obs)
	}
	var before unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
		return ph, nil, fmt.Errorf("getrusage: %w", err)
	}
	start := time.Now()
	stop := s.start(ctx, start)
	res, err := workload.Run(ctx, srv, cfg)
	stop()
	if err != nil {
		return ph, nil, fmt.Errorf("run workload: %w", err)
	}
	elapsed := time.Since(start)
	var after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
		return ph, nil, fmt.Errorf("getrusage: %w", err)
	}
	for name, r := range res {
		ph.Ops += r.Ops
		ph.P50MS[name], ph.P99MS[name] = ms(r.P50), ms(r.P99)
	}
	ph.Throughput = round2(float64(ph.Ops) / elapsed.Seconds())
	ph.CPUUserMS = ms(tv(after.Utime) - tv(before.Utime))
	ph.CPUSysMS = ms(tv(after.Stime) - tv(before.Stime))
	if ph.Ops > 0 {
		ph.CPUPerOpUS = round2((ph.CPUUserMS + ph.CPUSysMS) * 1000 / float64(ph.Ops))
	}
	ph.MaxRSSMB = round2(float64(after.Maxrss) / 1024)
	if obs != nil {
		ph.BPFRuntimeMS = ms(bpfRuntime(obs) - bpfBefore)
	}
	return ph, res, nil
}

func tv(t unix.Timeval) time.Duration { return time.Duration(t.Nano()) }

func bpfRuntime(obs *instrument.Observer) time.Duration {
	var total time.Duration
	stats, _ := obs.Stats()
	for _, s := range stats {
		total += s.Runtime
	}
	return total
}

// sampler samples RSS and open fds during a phase (long-running profile).
type sampler struct {
	every   time.Duration
	samples []protocol.WorkloadSample
}

// start samples until the returned stop is called; a nil sampler does
// nothing.
func (s *sampler) start(ctx context.Context, t0 time.Time) (stop func()) {
	if s == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	sample := func() {
		s.samples = append(s.samples, protocol.WorkloadSample{
			AtMS: time.Since(t0).Milliseconds(), RSSMB: round2(currentRSSMB()), FDs: openFDs(),
		})
	}
	go func() {
		defer close(done)
		t := time.NewTicker(s.every)
		defer t.Stop()
		sample()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// currentRSSMB is VmRSS of this process, in MB.
func currentRSSMB() float64 {
	return procStatusKB("/proc/self/status", "VmRSS:") / 1024
}

func memTotalMB() float64 {
	return round2(procStatusKB("/proc/meminfo", "MemTotal:") / 1024)
}

// procStatusKB reads a "Key: N kB" line.
func procStatusKB(file, key string) float64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseFloat(fields[0], 64)
				return n
			}
		}
	}
	return 0
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
