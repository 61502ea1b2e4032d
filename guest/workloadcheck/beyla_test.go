package workloadcheck

import (
	"maps"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/workload"
)

func TestParseTraces(t *testing.T) {
	// Lines in the format of Beyla's text trace printer, and log lines
	// that are not spans.
	in := strings.Join([]string{
		`time=2024-01-08T14:06:14Z level=INFO msg="instrumenting process" pid=1`,
		`2024-01-08 14:06:14.18286 (1.2ms[1.1ms]) HTTP 200 GET /api/users [127.0.0.1 as 127.0.0.1:40000]->[127.0.0.1 as 127.0.0.1:8080] size:0B svc=[w go] traceparent=[00-a-b-01]`,
		`2024-01-08 14:06:14.18300 (1.2ms[1.1ms]) HTTP 503 POST /api/orders [127.0.0.1 as 127.0.0.1:40000]->[127.0.0.1 as 127.0.0.1:8080] size:12B svc=[w go] traceparent=[00-a-b-01]`,
		`2024-01-08 14:06:14.18300 (1.2ms[1.1ms]) HTTPClient 503 POST /api/orders [127.0.0.1 as 127.0.0.1:40000]->[127.0.0.1 as 127.0.0.1:8080] size:12B svc=[w go] traceparent=[00-a-b-01]`,
		`2024-01-08 14:06:14.18400 (900µs[900µs]) GRPC 0 POST /workload.Echo/Stream [127.0.0.1 as x:1]->[127.0.0.1 as y:2] size:0B svc=[w go] traceparent=[]`,
		`2024-01-08 14:06:14.18500 (300µs[300µs]) SQLClient 0 select items [127.0.0.1 as x:1]->[127.0.0.1 as y:5432] size:0B svc=[w go] traceparent=[]`,
		`2024-01-08 14:06:14.18600 (100µs[100µs]) RedisClient 0 GET  [127.0.0.1 as x:1]->[127.0.0.1 as y:6379] size:0B svc=[w go] traceparent=[]`,
	}, "\n")
	got, spans, err := parseTraces(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{
		"http":  {"requests": 2, "status 200": 1, "status 503": 1},
		"grpc":  {"/workload.Echo/Stream": 1},
		"sql":   {"SELECT": 1},
		"redis": {"GET": 1},
	}
	if spans != 6 {
		t.Errorf("%d spans, want 6", spans)
	}
	for p, w := range want {
		if !maps.Equal(got[p], w) {
			t.Errorf("%s: got %v, want %v", p, got[p], w)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP http_server_request_duration_seconds duration of HTTP service calls from the server side, in seconds
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/api/users",le="+Inf"} 7
http_server_request_duration_seconds_sum{http_request_method="GET",http_response_status_code="200",http_route="/api/users"} 0.1
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/api/users"} 7
http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="503",http_route="/api/users",le="+Inf"} 2
http_server_request_duration_seconds_sum{http_request_method="GET",http_response_status_code="503",http_route="/api/users"} 0.1
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="503",http_route="/api/users"} 2
# TYPE rpc_server_duration_seconds histogram
rpc_server_duration_seconds_bucket{rpc_method="/workload.Echo/Unary",rpc_grpc_status_code="0",le="+Inf"} 3
rpc_server_duration_seconds_sum{rpc_method="/workload.Echo/Unary",rpc_grpc_status_code="0"} 0
rpc_server_duration_seconds_count{rpc_method="/workload.Echo/Unary",rpc_grpc_status_code="0"} 3
# TYPE db_client_operation_duration_seconds histogram
db_client_operation_duration_seconds_bucket{db_operation="SELECT",db_system="postgresql",le="+Inf"} 4
db_client_operation_duration_seconds_sum{db_operation="SELECT",db_system="postgresql"} 0
db_client_operation_duration_seconds_count{db_operation="SELECT",db_system="postgresql"} 4
db_client_operation_duration_seconds_bucket{db_operation_name="set",db_system_name="redis",le="+Inf"} 5
db_client_operation_duration_seconds_sum{db_operation_name="set",db_system_name="redis"} 0
db_client_operation_duration_seconds_count{db_operation_name="set",db_system_name="redis"} 5
`
	got, fams, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if fams != 3 {
		t.Errorf("%d families, want 3", fams)
	}
	want := map[string]map[string]int64{
		"http":  {"requests": 9, "status 200": 7, "status 503": 2},
		"grpc":  {"/workload.Echo/Unary": 3},
		"sql":   {"SELECT": 4},
		"redis": {"SET": 5},
	}
	for p, w := range want {
		if !maps.Equal(got[p], w) {
			t.Errorf("%s: got %v, want %v", p, got[p], w)
		}
	}
	if _, _, err := parseMetrics(strings.NewReader("not metrics {{{\n")); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestBeylaExpected(t *testing.T) {
	sent := map[string]workload.Result{
		"http":  {Counts: map[string]int64{"GET /a": 3, "POST /b": 1, "status 200": 3, "status 503": 1}},
		"grpc":  {Counts: map[string]int64{"unary calls": 2, "unary responses": 2, "stream calls": 1, "stream responses": 3}},
		"sql":   {Counts: map[string]int64{"SELECT simple": 1, "SELECT extended": 2, "UPDATE simple": 1}},
		"redis": {Counts: map[string]int64{"HELLO": 1, "GET": 4, "reply bulk": 4}},
	}
	want := map[string]map[string]int64{
		"http":  {"requests": 4, "status 200": 3, "status 503": 1},
		"grpc":  {"/workload.Echo/Unary": 2, "/workload.Echo/Stream": 1},
		"sql":   {"SELECT": 3, "UPDATE": 1},
		"redis": {"GET": 4},
	}
	got := beylaExpected(sent)
	for p, w := range want {
		if !maps.Equal(got[p], w) {
			t.Errorf("%s: got %v, want %v", p, got[p], w)
		}
	}
	if line := compareBeyla(want["http"], "metrics", "http", map[string]int64{"requests": 4, "status 200": 4}); line != "http (metrics): expected {status 200=3, status 503=1} observed {status 200=4, status 503=0}" {
		t.Errorf("compareBeyla: %q", line)
	}
	if line := compareBeyla(want["sql"], "traces", "sql", map[string]int64{"SELECT": 3, "UPDATE": 1, "DELETE": 9}); line != "" {
		t.Errorf("compareBeyla on keys not expected: %q", line)
	}
}
