// SPDX-License-Identifier: GPL-2.0
// Programs that attach to another BPF program rather than to the kernel:
// replace_decide replaces the global function decide of freplace_target.o
// (freplace, 5.6), trace_decide runs on its entry (fentry on a BPF program,
// 5.5). Neither can be loaded without the target program.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 calls;

SEC("freplace/decide")
int replace_decide(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("fentry/decide")
int trace_decide(void *ctx)
{
	calls++;
	return 0;
}
