// Package instrument is vmrunner's built-in eBPF instrumentation for the
// workload check: tracepoint programs on the write and sendto syscalls that
// read the first bytes of each message the workload sends and count them per
// protocol, operation and status in a BPF map, the way Beyla's generic
// tracer classifies traffic.
//
// What is classified (see bpf/observe.c):
//   - HTTP/1.x: request lines ("GET /users") on the client side and status
//     lines on the server side;
//   - gRPC: HTTP/2 frames. The client's HEADERS frames are calls; the
//     server's DATA frames are response messages and its HEADERS frames with
//     END_STREAM are trailers. HPACK indexes :path after its first use on a
//     connection, so unary and streaming calls are told apart by port: the
//     workload serves each kind on its own port;
//   - PostgreSQL: frontend Query ('Q') and Parse ('P') messages and the verb
//     of their SQL;
//   - Redis: RESP command arrays (command name) and reply types.
//
// Only the writes of the client process (Config.TGID) and of the server
// processes that run apart (Config.ServerTGIDs: a real redis-server) on
// sockets whose local or remote port is a registered server port are
// looked at; the side of the connection comes from which of the two ports
// is the server's. PostgreSQL's backends (a process per connection) need
// no registering: only the client's messages are counted.
//
// The programs need kernel BTF (CO-RE reads of task->files and the socket),
// syscall tracepoints (CONFIG_FTRACE_SYSCALLS) and bpf_get_current_task. Two
// builds are embedded: one with bpf_probe_read_user/_kernel (5.5+) and one
// with bpf_probe_read for older kernels; Load picks the first the kernel
// supports and says which in Info.
package instrument
