package tracepoint

// The objects are committed; `go generate` rebuilds them with the
// distribution's clang (clang, llvm and libbpf-dev).
//go:generate go tool bpf2go -tags linux -target bpfel -type event getpid bpf/getpid.c -- -I/usr/include -O2 -g -Wall
//go:generate go tool bpf2go -tags linux -target bpfel -type event loop bpf/loop.c -- -I/usr/include -O2 -g -Wall
