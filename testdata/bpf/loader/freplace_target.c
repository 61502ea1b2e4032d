// SPDX-License-Identifier: GPL-2.0
// The target of freplace.c: an XDP program whose decision is made by a
// global (separately verified) function that an extension program can
// replace and a tracing program can attach to.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__attribute__((noinline)) int decide(struct xdp_md *ctx)
{
	if (!ctx)
		return XDP_ABORTED;
	return ctx->data_end - ctx->data > 1500 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_target(struct xdp_md *ctx)
{
	return decide(ctx);
}
