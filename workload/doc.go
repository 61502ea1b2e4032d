// Package workload is the multi-protocol traffic of the workload check:
// servers on loopback for HTTP/1.1 (net/http) and gRPC (unary and
// server-streaming, google.golang.org/grpc), and load generators that
// drive real clients (net/http, grpc-go, pgx, go-redis) at configured
// rates for a configured duration. In the guest, PostgreSQL and Redis are
// the real ones from Debian's packages (ServerConfig.PG and .Redis;
// internal/servers, guest/workloadcheck); pgwire.go and resp.go are
// stand-ins written here (pgproto3, redcon) for tests without a VM: they
// say what we think those servers say, not what they say.
//
// Run records what was sent, per protocol, in the vocabulary the
// instrumentation reports (see Keys): operations by name and status, so
// that "observed" can be compared with "sent" exactly. A client error (a
// request that may or may not have reached the wire) is counted apart; it
// makes an exact comparison impossible, and callers should treat it as a
// failure of the run.
package workload
