package workloadcheck

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vmrunner/vmrunner/workload"
)

// The beyla check compares counts in this vocabulary, per protocol:
//
//	http:  "requests", "status NNN"      (server spans)
//	grpc:  "/workload.Echo/Unary", "/workload.Echo/Stream" (server spans)
//	sql:   "SELECT", "INSERT", "UPDATE"  (client spans)
//	redis: "GET", "SET", "DEL"           (client spans)
//
// the RFD's multi-protocol expectations: requests and 5xx share for HTTP,
// unary and streaming calls for gRPC, the operation breakdown for SQL and
// Redis. Other operations (go-redis's HELLO, spans of other kinds) are not
// compared.

var (
	sqlVerbs      = []string{"SELECT", "INSERT", "UPDATE"}
	redisCommands = []string{"GET", "SET", "DEL"}
	grpcMethods   = map[string]string{"unary calls": "/workload.Echo/Unary", "stream calls": "/workload.Echo/Stream"}
)

// beylaExpected turns what the load generators sent into the vocabulary.
func beylaExpected(sent map[string]workload.Result) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for name, r := range sent {
		m := map[string]int64{}
		switch name {
		case workload.HTTP:
			for k, n := range r.Counts {
				if strings.HasPrefix(k, "status ") {
					m[k] += n
					m["requests"] += n
				}
			}
		case workload.GRPC:
			for k, method := range grpcMethods {
				if n := r.Counts[k]; n > 0 {
					m[method] = n
				}
			}
		case workload.SQL:
			for k, n := range r.Counts {
				if verb, _, ok := strings.Cut(k, " "); ok && slices.Contains(sqlVerbs, verb) {
					m[verb] += n
				}
			}
		case workload.Redis:
			for _, c := range redisCommands {
				if n := r.Counts[c]; n > 0 {
					m[c] = n
				}
			}
		}
		out[name] = m
	}
	return out
}

// traceLineRE matches Beyla's text trace printer: start time, durations,
// then type, status, method and path, then the peers.
//
//	2024-01-08 14:06:14.18286 (1.2ms[1.1ms]) HTTP 200 GET /api/users [127.0.0.1 as 127.0.0.1:40000]->[...
var traceLineRE = regexp.MustCompile(`^\S+ \S+ \([^)]*\) (\S+) (-?\d+) (\S*) (\S*) \[`)

// maxTraceLine bounds one line of Beyla's output.
const maxTraceLine = 64 << 10

// parseTraces counts the spans of Beyla's text trace printer in the
// vocabulary; lines that are not spans (logs) are skipped. It returns the
// counts and the number of span lines.
func parseTraces(r io.Reader) (map[string]map[string]int64, int, error) {
	out := map[string]map[string]int64{}
	add := func(proto, key string) {
		if out[proto] == nil {
			out[proto] = map[string]int64{}
		}
		out[proto][key]++
	}
	spans := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxTraceLine)
	for sc.Scan() {
		m := traceLineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		spans++
		typ, status, method, path := m[1], m[2], strings.ToUpper(m[3]), m[4]
		switch typ {
		case "HTTP":
			add(workload.HTTP, "requests")
			add(workload.HTTP, "status "+status)
		case "GRPC":
			add(workload.GRPC, path)
		case "SQLClient":
			add(workload.SQL, method)
		case "RedisClient":
			add(workload.Redis, method)
		}
	}
	if err := sc.Err(); err != nil {
		return out, spans, fmt.Errorf("read trace lines: %w", err)
	}
	return out, spans, nil
}

// parseMetrics counts the requests of Beyla's Prometheus metrics (the
// _count of its duration histograms) in the vocabulary. It returns the
// counts and the number of metric families.
func parseMetrics(r io.Reader) (map[string]map[string]int64, int, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, 0, fmt.Errorf("parse Prometheus metrics: %w", err)
	}
	out := map[string]map[string]int64{}
	add := func(proto, key string, n uint64) {
		if out[proto] == nil {
			out[proto] = map[string]int64{}
		}
		out[proto][key] += int64(n)
	}
	each := func(name string, f func(labels map[string]string, n uint64)) {
		fam, ok := fams[name]
		if !ok {
			return
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			f(labels, count(m))
		}
	}
	each("http_server_request_duration_seconds", func(l map[string]string, n uint64) {
		add(workload.HTTP, "requests", n)
		add(workload.HTTP, "status "+l["http_response_status_code"], n)
	})
	each("rpc_server_duration_seconds", func(l map[string]string, n uint64) {
		add(workload.GRPC, l["rpc_method"], n)
	})
	each("db_client_operation_duration_seconds", func(l map[string]string, n uint64) {
		op := l["db_operation_name"]
		if op == "" {
			op = l["db_operation"] // before OpenTelemetry semconv 1.26
		}
		proto := workload.SQL
		if l["db_system"] == "redis" || l["db_system_name"] == "redis" {
			proto = workload.Redis
		}
		add(proto, strings.ToUpper(op), n)
	})
	return out, len(fams), nil
}

// count is a histogram's sample count, or a counter's value.
func count(m *dto.Metric) uint64 {
	if h := m.GetHistogram(); h != nil {
		return h.GetSampleCount()
	}
	if c := m.GetCounter(); c != nil {
		return uint64(c.GetValue())
	}
	return 0
}

// compareBeyla returns a mismatch line per protocol and source whose
// counts differ from the expected ones, on the expected keys only.
func compareBeyla(expected map[string]int64, source, proto string, got map[string]int64) string {
	var exp, obs []string
	for _, k := range slices.Sorted(maps.Keys(expected)) {
		if got[k] != expected[k] {
			exp = append(exp, k+"="+strconv.FormatInt(expected[k], 10))
			obs = append(obs, k+"="+strconv.FormatInt(got[k], 10))
		}
	}
	if len(exp) == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%s): expected {%s} observed {%s}", proto, source, strings.Join(exp, ", "), strings.Join(obs, ", "))
}

// restrict keeps the keys of m that are in keys.
func restrict(m, keys map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k := range keys {
		if n, ok := m[k]; ok {
			out[k] = n
		}
	}
	return out
}
