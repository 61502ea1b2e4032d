package workload

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func startServers(t *testing.T, cfg ServerConfig) *Servers {
	t.Helper()
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestRun drives every protocol's real client against its server and
// checks the tallies against each other: every HTTP request has a status,
// every stream has its messages, every command its reply.
func TestRun(t *testing.T) {
	s := startServers(t, ServerConfig{ErrorRate: 0.5, Latency: time.Millisecond, Seed: 1})
	res, err := Run(t.Context(), s, Config{
		Duration: 700 * time.Millisecond,
		Rates:    map[string]int{HTTP: 200, GRPC: 100, SQL: 100, Redis: 100},
		Seed:     3,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Protocols {
		r := res[p]
		if r.Errors != 0 || r.Ops == 0 {
			t.Fatalf("%s: %d ops, %d errors (%s)", p, r.Ops, r.Errors, r.FirstError)
		}
		if r.AchievedRate <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: rate %v, p50 %v, p99 %v", p, r.AchievedRate, r.P50, r.P99)
		}
	}
	h := res[HTTP].Counts
	if got := h["status 200"] + h["status 503"]; got != res[HTTP].Ops || h["status 503"] == 0 || h["status 200"] == 0 {
		t.Errorf("http: %v: want 200s and 503s adding up to %d requests", h, res[HTTP].Ops)
	}
	if got := h["GET /api/users"] + h["GET /api/slow"] + h["POST /api/orders"]; got != res[HTTP].Ops {
		t.Errorf("http: %v: routes add up to %d, want %d", h, got, res[HTTP].Ops)
	}
	g := res[GRPC].Counts
	if g["unary calls"] == 0 || g["stream calls"] == 0 || g["stream responses"] != 3*g["stream calls"] ||
		g["unary responses"] != g["unary calls"] || g["stream finished"] != g["stream calls"] {
		t.Errorf("grpc: %v", g)
	}
	var sql int64
	for _, verb := range []string{"SELECT", "INSERT", "UPDATE"} {
		for _, how := range []string{"simple", "extended"} {
			if res[SQL].Counts[verb+" "+how] == 0 {
				t.Errorf("sql: no %s %s in %v", verb, how, res[SQL].Counts)
			}
			sql += res[SQL].Counts[verb+" "+how]
		}
	}
	if sql != res[SQL].Ops {
		t.Errorf("sql: %v adds up to %d, want %d", res[SQL].Counts, sql, res[SQL].Ops)
	}
	rc := res[Redis].Counts
	if rc["HELLO"] == 0 || rc["HELLO"] != rc["reply array"] || rc["GET"] != rc["reply bulk"] ||
		rc["SET"] != rc["reply status"] || rc["DEL"] != rc["reply integer"] {
		t.Errorf("redis: %v", rc)
	}
}

// TestPGServer checks the wire protocol server with pgx directly, through
// the simple and every extended query mode pgx has.
func TestPGServer(t *testing.T) {
	s := startServers(t, ServerConfig{})
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, "postgres://u@"+s.PG+"/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, mode := range []pgx.QueryExecMode{
		pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
	} {
		var (
			id   int32
			name string
		)
		if err := conn.QueryRow(ctx, "SELECT id, name FROM items WHERE id = $1", mode, int32(7)).Scan(&id, &name); err != nil {
			t.Fatalf("%v: select: %v", mode, err)
		}
		if id != 7 || name != "item-7" {
			t.Errorf("%v: got (%d, %q), want (7, item-7)", mode, id, name)
		}
		tag, err := conn.Exec(ctx, "UPDATE items SET name = 'x' WHERE id = $1", mode, int32(7))
		if err != nil || tag.String() != "UPDATE 1" || tag.RowsAffected() != 1 {
			t.Errorf("%v: update: tag %q, err %v", mode, tag, err)
		}
		tag, err = conn.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, 'n')", mode, int32(8))
		if err != nil || !tag.Insert() {
			t.Errorf("%v: insert: tag %q, err %v", mode, tag, err)
		}
	}
}

// TestRedisServer checks GET, SET and DEL through go-redis.
func TestRedisServer(t *testing.T) {
	s := startServers(t, ServerConfig{})
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: s.Redis, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing key: %v, want redis.Nil", err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("GET: %q, %v", v, err)
	}
	if n, err := c.Del(ctx, "k", "other").Result(); err != nil || n != 1 {
		t.Errorf("DEL: %d, %v; want 1", n, err)
	}
	if err := c.Do(ctx, "FLUSHALL").Err(); err == nil {
		t.Error("unknown command FLUSHALL succeeded")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var d []time.Duration
		for _, n := range ns {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(5), 0.99, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 100), 0.99, 100 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 100), 0.9, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

// TestStartExternal: PostgreSQL and Redis given (the guest's real ones) are
// used as they are, and only the other servers start.
func TestStartExternal(t *testing.T) {
	s := startServers(t, ServerConfig{PG: "127.0.0.1:5432", Redis: "127.0.0.1:6379"})
	if s.PG != "127.0.0.1:5432" || s.Redis != "127.0.0.1:6379" {
		t.Errorf("PG %s, Redis %s: want the addresses given", s.PG, s.Redis)
	}
	if len(s.stop) != 3 || Port(s.HTTP) == 0 || Port(s.GRPCUnary) == 0 || Port(s.GRPCStream) == 0 {
		t.Errorf("%d servers started (HTTP %s, gRPC %s %s), want the 3 others", len(s.stop), s.HTTP, s.GRPCUnary, s.GRPCStream)
	}
}
