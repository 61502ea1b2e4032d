// Package tracepoint is vmrunner's worked example of running your own Go
// tests on real kernels: two small eBPF programs on the
// syscalls:sys_enter_getpid tracepoint, one that reports each getpid(2) of
// the test process through a ring buffer, one that also sums numbers with
// the bpf_loop helper. The tests load them with cilium/ebpf, attach them,
// call getpid and read the event back. See README.md.
package tracepoint
