// Package workload is the multi-protocol traffic of the workload check:
// servers on loopback for HTTP/1.1 (net/http), gRPC (unary and
// server-streaming, google.golang.org/grpc), the PostgreSQL wire protocol
// (pgproto3, with pgx as the client) and Redis RESP (redcon, with go-redis
// as the client), and load generators that drive real clients against them
// at configured rates for a configured duration.
//
// Run records what was sent, per protocol, in the vocabulary the
// instrumentation reports (see Keys): operations by name and status, so
// that "observed" can be compared with "sent" exactly. A client error (a
// request that may or may not have reached the wire) is counted apart; it
// makes an exact comparison impossible, and callers should treat it as a
// failure of the run.
package workload
