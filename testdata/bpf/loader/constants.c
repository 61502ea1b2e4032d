// SPDX-License-Identifier: GPL-2.0
// Constants a loader sets before loading (volatile const, in .rodata). The
// verifier reads them from the frozen .rodata map and skips the branches
// they rule out: guarded_read is rejected as compiled (skip_bad_read false)
// and loads with skip_bad_read set to true.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

volatile const _Bool skip_bad_read = 0;
volatile const __u16 port = 0;
volatile const __s32 offset = -1;
volatile const __u64 limit = 0;
volatile const __u8 mac[6] = {};

SEC("socket")
int guarded_read(struct __sk_buff *skb)
{
	__u64 v;

	if (skip_bad_read)
		return 0;
	asm volatile("%0 = *(u64 *)(r10 + 8)" : "=r"(v)); // above the frame: rejected
	return v & 1;
}

SEC("socket")
int sized_constants(struct __sk_buff *skb)
{
	if (skb->protocol == port && skb->len + offset < limit)
		return mac[0];
	return 0;
}
