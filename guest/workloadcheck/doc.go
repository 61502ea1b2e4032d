// Package workloadcheck implements the "workload" and "beyla" checks: the
// multi-protocol scenario of package workload, observed by the built-in eBPF
// instrumentation (package instrument) or by a user-supplied Beyla binary.
//
// It runs in its own guest binary, cmd/vmrunner-workload, which the host packs
// into the initramfs only when a matrix asks for these checks: the gRPC,
// PostgreSQL and Redis clients make it several times the size of the agent.
// The agent runs it for each such check (see protocol.WorkloadRunnerPath) and relays
// its outcome.
package workloadcheck
