package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Servers are the workload's servers, each on its own loopback port.
type Servers struct {
	HTTP, GRPCUnary, GRPCStream, PG, Redis string // host:port

	stop []func() error
	wg   sync.WaitGroup
}

// ServerConfig configures the servers.
type ServerConfig struct {
	// ErrorRate is the share of HTTP responses that are 5xx.
	ErrorRate float64
	// Latency is added by the HTTP server to /api/slow.
	Latency time.Duration
	// StreamMessages is the number of messages per streaming gRPC call
	// (default 3).
	StreamMessages int
	Seed           uint64
	// PG and Redis, when set, are the addresses of real servers (the
	// guest's PostgreSQL and Redis): the stand-ins are not started.
	PG, Redis string
}

// Start starts every server on 127.0.0.1 with a port the kernel picks,
// but PostgreSQL and Redis when cfg gives real ones. Close stops them.
func Start(ctx context.Context, cfg ServerConfig) (_ *Servers, err error) {
	s := &Servers{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	listen := func() (net.Listener, error) {
		var lc net.ListenConfig
		return lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	}
	starts := []struct {
		addr  *string
		start func(net.Listener) (func() error, error)
	}{
		{&s.HTTP, func(ln net.Listener) (func() error, error) { return serveHTTP(ln, cfg, &s.wg), nil }},
		{&s.GRPCUnary, func(ln net.Listener) (func() error, error) { return serveGRPC(ln, cfg, &s.wg), nil }},
		{&s.GRPCStream, func(ln net.Listener) (func() error, error) { return serveGRPC(ln, cfg, &s.wg), nil }},
		{&s.PG, func(ln net.Listener) (func() error, error) { return servePG(ln, &s.wg), nil }},
		{&s.Redis, func(ln net.Listener) (func() error, error) { return serveRedis(ln, &s.wg), nil }},
	}
	external := map[*string]string{&s.PG: cfg.PG, &s.Redis: cfg.Redis}
	for _, st := range starts {
		if ext := external[st.addr]; ext != "" {
			*st.addr = ext
			continue
		}
		ln, err := listen()
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		*st.addr = ln.Addr().String()
		stop, err := st.start(ln)
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.stop = append(s.stop, stop)
	}
	return s, nil
}

// Port returns the port of addr.
func Port(addr string) uint16 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0
	}
	return ap.Port()
}

// Close stops every server and waits for their goroutines.
func (s *Servers) Close() error {
	var errs []error
	for _, stop := range slices.Backward(s.stop) {
		errs = append(errs, stop())
	}
	s.stop = nil
	s.wg.Wait()
	return errors.Join(errs...)
}
