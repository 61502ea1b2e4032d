package matrix

import "github.com/vmrunner/vmrunner/protocol"

// The "workload" check as written in matrix.yaml is its guest parameters
// (defaults in protocol.WorkloadCheck):
//
//	workload:
//	  scenario: multi-protocol          # the only one
//	  duration: 10s                     # each phase
//	  rates: {http: 200, grpc: 100, sql: 50, redis: 50}   # per second (default: the RFD's)
//	  error_rate: 0.1                   # share of HTTP 5xx
//	  latency: 2ms                      # added by /api/slow
//	  profile: standard                 # standard | constrained | long-running
//	  overhead: true                    # run a baseline phase first
//	  sample_every: 1m                  # long-running: RSS and fd sampling
//
// classifier and probe_read are for vmrunner's own tests.
func init() { registerCheck[protocol.WorkloadParams](protocol.WorkloadCheck.Def()) }
