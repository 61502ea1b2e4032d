package instrument

// The objects are committed; `make generate` rebuilds them with the
// distribution's clang (clang, llvm and libbpf-dev).
//go:generate go tool bpf2go -tags linux -target bpfel -type key -type settings -type port_info observe bpf/observe.c -- -I/usr/include -O2 -g -Wall
//go:generate go tool bpf2go -tags linux -target bpfel observeLegacy bpf/observe.c -- -I/usr/include -O2 -g -Wall -DLEGACY_PROBE_READ
