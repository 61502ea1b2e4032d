// SPDX-License-Identifier: GPL-2.0
// Global variables in .rodata, .data and .bss. no_globals uses none of
// them and uses_data only .data and .bss; nothing uses .rodata. A loader
// creates every map and every variable of the object, whatever each program
// uses.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

volatile const __u32 sample_rate = 10; // .rodata: used by no program
__u32 last_len = 1;                    // .data
__u64 packets;                         // .bss

SEC("socket")
int no_globals(struct __sk_buff *skb)
{
	return skb->len > 64;
}

SEC("socket")
int uses_data(struct __sk_buff *skb)
{
	packets++;
	last_len = skb->len;
	return 0;
}
