// SPDX-License-Identifier: GPL-2.0
// A program the verifier gives up on: the loop counter is exact, so the
// verifier walks every iteration and stops at its limit of one million
// processed instructions ("BPF program is too large"). Its detailed log
// would be hundreds of megabytes.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int too_complex(struct __sk_buff *skb)
{
	__u32 x = skb->len;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < (1 << 22); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
	}
	return x & 1;
}
