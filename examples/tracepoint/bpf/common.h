// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The few kernel types the example's programs need, so that they build
// without kernel headers (and the same on any host arch).

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum {
	BPF_MAP_TYPE_RINGBUF = 27,
};

#include <bpf/bpf_helpers.h>

// event is what both programs send to user space through the ring buffer.
struct event {
	__u32 tgid;
	__u32 pid;
	__u64 value; // getpid: 0; loop: the sum bpf_loop computed
};

// Keeps struct event in the object's BTF, for bpf2go -type event.
const struct event *const unused_event __attribute__((unused)) = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

// target_tgid is the test process: set before loading, so that only its
// calls are reported.
volatile const __u32 target_tgid = 0;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
