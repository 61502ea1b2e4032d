// Command beyla-fixture is a test fixture, not Beyla. It stands in for a
// Beyla binary in vmrunner's tests of the "beyla" check: started the way
// the check starts Beyla, it writes Beyla's documented outputs, the text
// trace printer (BEYLA_TRACE_PRINTER=text) on standard output and a
// Prometheus endpoint (BEYLA_PROMETHEUS_PORT) on loopback, so that the
// check's plumbing (packing, starting, waiting, scraping, parsing,
// validating, stopping) is tested on real kernels without Beyla.
//
// What it reports is observed, not made up: it loads vmrunner's own eBPF
// instrumentation (package instrument) on the process that started it (the
// workload runs in the guest agent) and turns its counters into spans.
// Those counters count HTTP request lines and status lines apart, so the
// fixture pairs them in the order it sees them: its per-route status split
// means nothing, its totals per route and per status are exact. It learns
// which port serves what from VMRUNNER_FIXTURE_PORTS, which Beyla does not
// need.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vmrunner/vmrunner/instrument"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "beyla-fixture:", err)
		os.Exit(1)
	}
}

func run() error {
	if p := os.Getenv("BEYLA_TRACE_PRINTER"); p != "text" {
		return fmt.Errorf("BEYLA_TRACE_PRINTER=%q: the fixture prints text only", p)
	}
	promPort, err := strconv.Atoi(os.Getenv("BEYLA_PROMETHEUS_PORT"))
	if err != nil {
		return fmt.Errorf("BEYLA_PROMETHEUS_PORT: %w", err)
	}
	ports, err := parsePorts(os.Getenv("VMRUNNER_FIXTURE_PORTS"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	obs, err := instrument.Load(instrument.Config{TGID: uint32(os.Getppid()), Ports: ports})
	if err != nil {
		return err
	}
	defer obs.Close()

	s := &spans{series: map[series]uint64{}, last: map[instrument.Count]uint64{}}
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(promPort))
	if err != nil {
		return fmt.Errorf("listen for metrics: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serveMetrics), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.poll(obs); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			err := s.poll(obs)
			_ = srv.Close()
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
				err = errors.Join(err, serr)
			}
			return err
		case <-tick.C:
		}
	}
}

func parsePorts(s string) ([]instrument.Port, error) {
	kinds := map[string]instrument.Port{
		"http": {Protocol: instrument.HTTP}, "grpc-unary": {Protocol: instrument.GRPC, Role: instrument.GRPCUnary},
		"grpc-stream": {Protocol: instrument.GRPC, Role: instrument.GRPCStream},
		"sql":         {Protocol: instrument.PG}, "redis": {Protocol: instrument.Redis},
	}
	var ports []instrument.Port
	for item := range strings.SplitSeq(s, ",") {
		kind, port, _ := strings.Cut(item, ":")
		p, ok := kinds[kind]
		n, err := strconv.ParseUint(port, 10, 16)
		if !ok || err != nil {
			return nil, fmt.Errorf("VMRUNNER_FIXTURE_PORTS: %q: expected KIND:PORT, KIND one of http, grpc-unary, grpc-stream, sql, redis", item)
		}
		p.Port = uint16(n)
		ports = append(ports, p)
	}
	return ports, nil
}

// series is one Prometheus series: a metric and its labels.
type series struct {
	metric string
	labels string // k=v,k=v sorted
}

type spans struct {
	mu     sync.Mutex
	series map[series]uint64
	// last are the counters at the previous poll, by key without N.
	last map[instrument.Count]uint64
	// HTTP requests and statuses seen but not yet paired.
	requests []string
	statuses []uint16
}

// poll turns the counters' growth since the last poll into spans.
func (s *spans) poll(obs *instrument.Observer) error {
	counts, err := obs.Counts()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, c := range counts {
		n := c.N
		c.N = 0
		delta := n - s.last[c]
		s.last[c] = n
		for range delta {
			s.span(now, c)
		}
	}
	for len(s.requests) > 0 && len(s.statuses) > 0 {
		method, path, _ := strings.Cut(s.requests[0], " ")
		status := s.statuses[0]
		s.requests, s.statuses = s.requests[1:], s.statuses[1:]
		s.print(now, "HTTP", int(status), method, path)
		s.series[series{"http_server_request_duration_seconds", fmt.Sprintf("http_request_method=%s,http_response_status_code=%d,http_route=%s", method, status, path)}]++
	}
	return nil
}

// span records one counted event.
func (s *spans) span(now time.Time, c instrument.Count) {
	switch {
	case c.Protocol == instrument.HTTP && c.Kind == instrument.Request:
		s.requests = append(s.requests, c.Op)
	case c.Protocol == instrument.HTTP && c.Kind == instrument.Response:
		s.statuses = append(s.statuses, c.Status)
	case c.Protocol == instrument.GRPC && c.Kind == instrument.Request:
		method := map[instrument.Role]string{instrument.GRPCUnary: "/workload.Echo/Unary", instrument.GRPCStream: "/workload.Echo/Stream"}[c.Role]
		s.print(now, "GRPC", 0, "POST", method)
		s.series[series{"rpc_server_duration_seconds", "rpc_grpc_status_code=0,rpc_method=" + method + ",rpc_system=grpc"}]++
	case c.Protocol == instrument.PG && c.Kind == instrument.Request:
		s.print(now, "SQLClient", 0, c.Op, "items")
		s.series[series{"db_client_operation_duration_seconds", "db_operation=" + c.Op + ",db_system=postgresql"}]++
	case c.Protocol == instrument.Redis && c.Kind == instrument.Request:
		s.print(now, "RedisClient", 0, c.Op, "-")
		s.series[series{"db_client_operation_duration_seconds", "db_operation=" + c.Op + ",db_system=redis"}]++
	}
}

// print writes a span the way Beyla's text trace printer does.
func (s *spans) print(now time.Time, typ string, status int, method, path string) {
	fmt.Printf("%s (0s[0s]) %s %d %s %s [127.0.0.1 as 127.0.0.1:0]->[127.0.0.1 as 127.0.0.1:0] size:0B svc=[vmrunner-workload go] traceparent=[00-00000000000000000000000000000000-0000000000000000-01]\n",
		now.Format("2006-01-02 15:04:05.12345"), typ, status, method, path)
}

// serveMetrics writes the series as histograms with zero durations: the
// fixture counts requests, it does not time them.
func (s *spans) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	fams := map[string]*dto.MetricFamily{}
	for sr, n := range s.series {
		f, ok := fams[sr.metric]
		if !ok {
			f = &dto.MetricFamily{Name: ptr(sr.metric), Help: ptr("request duration (beyla-fixture)"), Type: dto.MetricType_HISTOGRAM.Enum()}
			fams[sr.metric] = f
		}
		m := &dto.Metric{Histogram: &dto.Histogram{
			SampleCount: ptr(n), SampleSum: ptr(0.0),
			Bucket: []*dto.Bucket{{UpperBound: ptr(0.005), CumulativeCount: ptr(n)}, {UpperBound: ptr(math.Inf(1)), CumulativeCount: ptr(n)}},
		}}
		for kv := range strings.SplitSeq(sr.labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m.Label = append(m.Label, &dto.LabelPair{Name: ptr(k), Value: ptr(v)})
		}
		f.Metric = append(f.Metric, m)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range fams {
			if !yield(k) {
				return
			}
		}
	}) {
		if _, err := expfmt.MetricFamilyToText(w, fams[name]); err != nil {
			return
		}
	}
}

func ptr[T any](v T) *T { return &v }
