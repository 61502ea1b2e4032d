package workload

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Protocol names, as used in results.
const (
	HTTP  = "http"
	GRPC  = "grpc"
	SQL   = "sql"
	Redis = "redis"
)

// Protocols lists the protocol names in report order.
var Protocols = []string{HTTP, GRPC, SQL, Redis}

// Config is one load run.
type Config struct {
	Duration time.Duration
	// Rates are target operations per second by protocol name; 0 or
	// missing turns a protocol off.
	Rates map[string]int
	// ErrorRate is the share of HTTP responses that are 5xx.
	ErrorRate float64
	// Latency is added by the HTTP server to /api/slow.
	Latency time.Duration
	// Workers is the number of concurrent clients per protocol (default 2).
	Workers int
	// StreamMessages is the number of messages per streaming gRPC call
	// (default 3).
	StreamMessages int
	// Seed makes the choice of operations repeatable.
	Seed uint64
}

func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return 2
}

func (c Config) streamMessages() int {
	if c.StreamMessages > 0 {
		return c.StreamMessages
	}
	return 3
}

// Result is what one protocol's load generator did.
type Result struct {
	// Counts are the messages sent and received, by key (see Keys).
	Counts map[string]int64
	// Ops is the number of completed operations.
	Ops int64
	// Errors counts operations that failed in the client.
	Errors int64
	// FirstError is the first of them.
	FirstError string
	// TargetRate and AchievedRate are operations per second.
	TargetRate   int
	AchievedRate float64
	// P50 and P99 are client-side latencies.
	P50, P99 time.Duration
}

// tally collects one protocol's counts and latencies.
type tally struct {
	mu     sync.Mutex
	counts map[string]int64
	lat    []time.Duration
	errors int64
	first  error
}

func newTally() *tally { return &tally{counts: map[string]int64{}} }

func (t *tally) ok(d time.Duration, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.counts[k]++
	}
	t.lat = append(t.lat, d)
}

// add counts n under key without an operation.
func (t *tally) add(key string, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[key] += n
}

func (t *tally) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errors++
	if t.first == nil {
		t.first = err
	}
}

func (t *tally) result(target int, elapsed time.Duration) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Result{Counts: t.counts, Ops: int64(len(t.lat)), Errors: t.errors, TargetRate: target}
	if t.first != nil {
		r.FirstError = t.first.Error()
	}
	if elapsed > 0 {
		r.AchievedRate = float64(len(t.lat)) / elapsed.Seconds()
	}
	r.P50, r.P99 = percentile(t.lat, 0.50), percentile(t.lat, 0.99)
	return r
}

// percentile returns the q-quantile of d (nearest rank); it sorts d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// op is one operation of a protocol's client; n is its sequence number
// and rng is the worker's own.
type op func(ctx context.Context, n int, rng *rand.Rand, t *tally) error

// Run drives every protocol with a non-zero rate against s for
// cfg.Duration and returns what each sent. It returns early with ctx's
// error when ctx is done.
func Run(ctx context.Context, s *Servers, cfg Config) (map[string]Result, error) {
	clients, err := dial(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	defer clients.close()

	ops := map[string]op{
		HTTP:  clients.http,
		GRPC:  clients.grpc,
		SQL:   clients.sql,
		Redis: clients.redis,
	}
	tallies := map[string]*tally{}
	g, gctx := errgroup.WithContext(ctx)
	runCtx, cancel := context.WithTimeout(gctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	for pi, name := range Protocols {
		r := cfg.Rates[name]
		if r <= 0 {
			continue
		}
		t := newTally()
		tallies[name] = t
		lim := rate.NewLimiter(rate.Limit(r), 1)
		var seq sync.Mutex
		next := 0
		for w := range cfg.workers() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(pi*100+w)))
			g.Go(func() error {
				// Wait fails when the run's time is up, or would be
				// before the next slot: that is the end.
				for lim.Wait(runCtx) == nil {
					seq.Lock()
					n := next
					next++
					seq.Unlock()
					// An operation in flight outlives the run's time (it
					// is counted; its bytes are on the wire), not ctx.
					if err := ops[name](gctx, n, rng, t); err != nil {
						t.fail(err)
					}
				}
				return nil
			})
		}
	}
	_ = g.Wait()
	elapsed := time.Since(start)
	if t := tallies[Redis]; t != nil {
		clients.redisC.handshakes(t)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string]Result{}
	for name, t := range tallies {
		out[name] = t.result(cfg.Rates[name], elapsed)
	}
	return out, nil
}

// clients are the real protocol clients of one run.
type clients struct {
	cfg    Config
	s      *Servers
	closer []func() error
	httpC  *httpClient
	grpcC  *grpcClient
	pgC    *pgClient
	redisC *redisClient
}

func dial(ctx context.Context, s *Servers, cfg Config) (_ *clients, err error) {
	c := &clients{cfg: cfg, s: s}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if cfg.Rates[HTTP] > 0 {
		c.httpC = newHTTPClient(s.HTTP, cfg.workers())
		c.closer = append(c.closer, c.httpC.close)
	}
	if cfg.Rates[GRPC] > 0 {
		if c.grpcC, err = newGRPCClient(s.GRPCUnary, s.GRPCStream); err != nil {
			return nil, err
		}
		c.closer = append(c.closer, c.grpcC.close)
	}
	if cfg.Rates[SQL] > 0 {
		if c.pgC, err = newPGClient(ctx, s.PG, cfg.workers()); err != nil {
			return nil, err
		}
		c.closer = append(c.closer, c.pgC.close)
	}
	if cfg.Rates[Redis] > 0 {
		if c.redisC, err = newRedisClient(s.Redis, cfg.workers()); err != nil {
			return nil, err
		}
		c.closer = append(c.closer, c.redisC.close)
	}
	return c, nil
}

func (c *clients) close() {
	for _, f := range slices.Backward(c.closer) {
		_ = f()
	}
	c.closer = nil
}

func (c *clients) http(ctx context.Context, n int, rng *rand.Rand, t *tally) error {
	return c.httpC.do(ctx, n, rng, t)
}

func (c *clients) grpc(ctx context.Context, n int, rng *rand.Rand, t *tally) error {
	return c.grpcC.do(ctx, n, c.cfg.streamMessages(), t)
}

func (c *clients) sql(ctx context.Context, n int, rng *rand.Rand, t *tally) error {
	return c.pgC.do(ctx, n, rng, t)
}

func (c *clients) redis(ctx context.Context, n int, rng *rand.Rand, t *tally) error {
	return c.redisC.do(ctx, n, rng, t)
}
