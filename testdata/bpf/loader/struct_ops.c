// SPDX-License-Identifier: GPL-2.0
// A TCP congestion control in BPF: one struct_ops map and the programs it
// points to, in .struct_ops.link (the only struct_ops section cilium/ebpf
// reads: a map with BPF_F_LINK, 6.4). The map is filled once its programs
// are loaded.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
};

SEC("struct_ops/vmr_ssthresh")
__u32 vmr_ssthresh(unsigned long long *ctx) { return 2; }

SEC("struct_ops/vmr_cong_avoid")
void vmr_cong_avoid(unsigned long long *ctx) {}

SEC("struct_ops/vmr_undo_cwnd")
__u32 vmr_undo_cwnd(unsigned long long *ctx) { return 2; }

SEC(".struct_ops.link")
struct tcp_congestion_ops vmr_cc = {
	.ssthresh = (void *)vmr_ssthresh,
	.cong_avoid = (void *)vmr_cong_avoid,
	.undo_cwnd = (void *)vmr_undo_cwnd,
	.name = "vmr_cc",
};
