package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// httpRoutes are the routes the HTTP load generator requests, with their
// methods. /api/slow waits ServerConfig.Latency.
var httpRoutes = []struct{ method, path string }{
	{http.MethodGet, "/api/users"},
	{http.MethodGet, "/api/slow"},
	{http.MethodPost, "/api/orders"},
}

// serveHTTP serves the routes on ln until the returned stop is called.
func serveHTTP(ln net.Listener, cfg ServerConfig, wg *sync.WaitGroup) func() error {
	var (
		mu  sync.Mutex
		rng = rand.New(rand.NewPCG(cfg.Seed, 1))
	)
	fail := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64() < cfg.ErrorRate
	}
	handle := func(w http.ResponseWriter, r *http.Request, body string) {
		_, _ = io.Copy(io.Discard, r.Body)
		if fail() {
			http.Error(w, "injected failure", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users", func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, `{"users":[{"id":1,"name":"ada"}]}`)
	})
	mux.HandleFunc("GET /api/slow", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Latency > 0 {
			select {
			case <-time.After(cfg.Latency):
			case <-r.Context().Done():
			}
		}
		handle(w, r, `{"slow":true}`)
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, `{"order":"created"}`)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { _ = srv.Serve(ln) })
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return errors.Join(err, srv.Close())
		}
		return nil
	}
}

type httpClient struct {
	base string
	c    *http.Client
	tr   *http.Transport
}

func newHTTPClient(addr string, conns int) *httpClient {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		// Never retry: a retried request would be sent twice but counted once.
		DialContext: (&net.Dialer{}).DialContext,
	}
	return &httpClient{base: "http://" + addr, c: &http.Client{Transport: tr}, tr: tr}
}

// do sends one request, chosen by rng, and counts "METHOD /path" and
// "status NNN".
func (h *httpClient) do(ctx context.Context, _ int, rng *rand.Rand, t *tally) error {
	route := httpRoutes[rng.IntN(len(httpRoutes))]
	var body io.Reader
	if route.method == http.MethodPost {
		body = bytes.NewReader([]byte(`{"item":42}`))
	}
	req, err := http.NewRequestWithContext(ctx, route.method, h.base+route.path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	start := time.Now()
	resp, err := h.c.Do(req)
	if err != nil {
		return fmt.Errorf("http %s %s: %w", route.method, route.path, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read http response: %w", err)
	}
	t.ok(time.Since(start), route.method+" "+route.path, "status "+strconv.Itoa(resp.StatusCode))
	return nil
}

func (h *httpClient) close() error {
	h.tr.CloseIdleConnections()
	return nil
}
