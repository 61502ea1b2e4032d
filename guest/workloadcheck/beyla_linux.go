package workloadcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/workload"
)

// Bounds on what is kept of Beyla's output.
const (
	maxBeylaStdout  = 64 << 20
	maxBeylaStderr  = 8 << 10
	maxBeylaMetrics = 4 << 20
	beylaReadyLimit = 2 * time.Minute
)

func init() { Checks.Add(protocol.BeylaCheck.Def(), checkBeyla) }

// checkBeyla is the "beyla" check: it starts a user-supplied Beyla (or
// OBI) binary with its text trace printer and a Prometheus endpoint on
// loopback, runs the multi-protocol load, and validates the RFD's
// expectations against both outputs.
func checkBeyla(ctx context.Context, params json.RawMessage) (guest.Outcome, error) {
	p, err := protocol.BeylaCheck.Params(params)
	if err != nil {
		return guest.Outcome{}, err
	}
	d := &protocol.BeylaDetails{Protocols: map[string]protocol.BeylaProtocol{}, Mismatches: []string{}}
	o := guest.Outcome{Details: d}

	bin, err := beylaBinary(p.Binary)
	if err != nil {
		return o, err
	}
	d.Binary = bin
	srv, rs, err := startServers(ctx, workload.ServerConfig{ErrorRate: p.ErrorRate, Latency: 2 * time.Millisecond, Seed: 1}, nil)
	if err != nil {
		o.Artifacts = append(o.Artifacts, rs.artifacts("beyla")...)
		return o, err
	}
	defer rs.Close()
	defer srv.Close()
	promPort, err := freePort(ctx)
	if err != nil {
		return o, err
	}

	stdout, err := os.CreateTemp("", "beyla-stdout-")
	if err != nil {
		return o, fmt.Errorf("create trace file: %w", err)
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr := &tailBuffer{max: maxBeylaStderr}

	start := time.Now()
	beyla, err := startBeyla(ctx, bin, srv, promPort, stdout, stderr)
	if err != nil {
		return o, err
	}
	defer func() { _ = beyla.stop() }()

	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	if err := waitMetrics(ctx, metricsURL, beyla.exited); err != nil {
		beyla.stopped = true
		d.Stderr = stderr.String()
		return o, fmt.Errorf("wait for %s's metrics endpoint: %w", filepath.Base(bin), err)
	}
	d.StartupMS = ms(time.Since(start))
	if err := sleep(ctx, time.Duration(p.Warmup)); err != nil {
		return o, err
	}

	sent, err := workload.Run(ctx, srv, workload.Config{
		Duration: time.Duration(p.Duration), Rates: p.Rates, ErrorRate: p.ErrorRate, Seed: 2,
	})
	if err != nil {
		return o, fmt.Errorf("run workload: %w", err)
	}
	if err := sleep(ctx, time.Duration(p.Settle)); err != nil {
		return o, err
	}
	metricsText, err := scrape(ctx, metricsURL)
	if err != nil {
		d.Stderr = stderr.String()
		return o, err
	}
	if err := beyla.stop(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 0 && !exit.Exited() {
			d.Stderr = stderr.String()
		}
	}
	metrics, traces, err := beylaCounts(d, metricsText, stdout)
	if err != nil {
		return o, err
	}
	compareBeylaCounts(d, sent, metrics, traces)
	beylaVerdict(&o, d, metricsText)
	return o, nil
}

// beylaProcess is a Beyla started by startBeyla.
type beylaProcess struct {
	cmd    *exec.Cmd
	exited chan error // how it exited, once
	// stopped: stop has nothing (more) to do; set by whoever took its
	// exit from exited.
	stopped bool
}

// startBeyla starts bin told to watch srv's ports, printing traces as text
// to stdout and serving Prometheus metrics on promPort.
func startBeyla(ctx context.Context, bin string, srv *workload.Servers, promPort int, stdout io.Writer, stderr io.Writer) (*beylaProcess, error) {
	ports := []string{strconv.Itoa(int(workload.Port(srv.HTTP))), strconv.Itoa(int(workload.Port(srv.GRPCUnary))),
		strconv.Itoa(int(workload.Port(srv.GRPCStream))), strconv.Itoa(int(workload.Port(srv.PG))), strconv.Itoa(int(workload.Port(srv.Redis)))}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(),
		"BEYLA_OPEN_PORT="+strings.Join(ports, ","),
		"BEYLA_TRACE_PRINTER=text",
		"BEYLA_PROMETHEUS_PORT="+strconv.Itoa(promPort),
		"OTEL_SERVICE_NAME=vmrunner-workload",
		// For the fixture only (testdata/beyla-fixture): what each port
		// serves. Beyla finds that out itself.
		"VMRUNNER_FIXTURE_PORTS="+fmt.Sprintf("http:%s,grpc-unary:%s,grpc-stream:%s,sql:%s,redis:%s", ports[0], ports[1], ports[2], ports[3], ports[4]),
	)
	cmd.Stdout = &limitWriter{w: stdout, n: maxBeylaStdout}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	b := &beylaProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { b.exited <- cmd.Wait() }()
	return b, nil
}

// stop interrupts Beyla, kills it if it has not exited 10 s later, and
// returns how it exited; only the first call does anything.
func (b *beylaProcess) stop() error {
	if b.stopped {
		return nil
	}
	b.stopped = true
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-b.exited:
		return err
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		return <-b.exited
	}
}

// beylaCounts reads Beyla's counts per protocol from its metrics and its
// trace lines (stdout, from the start), saying in d how many it read.
func beylaCounts(d *protocol.BeylaDetails, metricsText []byte, stdout io.ReadSeeker) (metrics, traces map[string]map[string]int64, err error) {
	metrics, fams, err := parseMetrics(bytes.NewReader(metricsText))
	if err != nil {
		return nil, nil, err
	}
	d.MetricFamilies = fams
	if _, err := stdout.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("read trace lines: %w", err)
	}
	traces, spans, err := parseTraces(stdout)
	if err != nil {
		return nil, nil, err
	}
	d.TraceLines = spans
	return metrics, traces, nil
}

// compareBeylaCounts compares, per protocol, what Beyla counted in its
// metrics and traces with what the clients sent, into d.
func compareBeylaCounts(d *protocol.BeylaDetails, sent map[string]workload.Result, metrics, traces map[string]map[string]int64) {
	expected := beylaExpected(sent)
	for _, name := range workload.Protocols {
		exp, ok := expected[name]
		if !ok {
			continue
		}
		bp := protocol.BeylaProtocol{
			AchievedRate: round2(sent[name].AchievedRate), Expected: exp,
			Metrics: restrict(metrics[name], exp), Traces: restrict(traces[name], exp),
		}
		bp.Match = true
		if r := sent[name]; r.Errors > 0 {
			bp.Match = false
			d.Mismatches = append(d.Mismatches, fmt.Sprintf("%s: %d client errors (first: %s)", name, r.Errors, r.FirstError))
		}
		for _, src := range []struct {
			name string
			got  map[string]int64
		}{{"metrics", metrics[name]}, {"traces", traces[name]}} {
			if line := compareBeyla(exp, src.name, name, src.got); line != "" {
				bp.Match = false
				d.Mismatches = append(d.Mismatches, line)
			}
		}
		d.Protocols[name] = bp
	}
}

// beylaVerdict is the check's status, message and metrics artifact: a
// pass when Beyla saw what was sent.
func beylaVerdict(o *guest.Outcome, d *protocol.BeylaDetails, metricsText []byte) {
	art := metricsText
	if len(art) > maxBeylaMetrics {
		art = art[:maxBeylaMetrics]
	}
	o.Artifacts = append(o.Artifacts, protocol.Artifact{Check: "beyla", Name: "beyla/metrics.txt", Data: string(art)})
	if len(d.Mismatches) > 0 {
		o.Status = protocol.StatusFail
		o.Message = "beyla's counts differ from sent: " + strings.Join(d.Mismatches, "; ")
		return
	}
	o.Status = protocol.StatusPass
	o.Message = fmt.Sprintf("beyla saw what was sent for %d protocols (%d spans, %d metric families; ready in %.1fs)",
		len(d.Protocols), d.TraceLines, d.MetricFamilies, d.StartupMS/1000)
}

// beylaBinary resolves the binary's guest path: a directory holds one
// executable per arch.
func beylaBinary(path string) (string, error) {
	if path == "" {
		return "", errors.New("beyla: no binary")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("beyla binary: %w", err)
	}
	if fi.IsDir() {
		arch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]
		path = filepath.Join(path, arch)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("beyla binary for %s: %w", arch, err)
		}
	}
	return path, nil
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitMetrics polls url until it answers 200, the process exits or the
// limit passes.
func waitMetrics(ctx context.Context, url string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, beylaReadyLimit)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := scrape(ctx, url); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before answering: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func scrape(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxBeylaMetrics))
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	return b, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limitWriter writes at most n bytes to w and drops the rest.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	n, err := l.w.Write(q)
	l.n -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
