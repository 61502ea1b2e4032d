// SPDX-License-Identifier: GPL-2.0
// One trivial program per kind of hook the verifier check's attach step
// knows. Every kernel of the default matrix loads all of them; attaching
// is another matter: tcx links came in 6.6, and arm64 kernels could not
// attach fentry/fexit to kernel functions before direct calls from ftrace
// (6.4 or so).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/vfs_read")
int kprobe_vfs_read(void *ctx) { return 0; }

SEC("kretprobe/vfs_read")
int kretprobe_vfs_read(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getpid")
int tracepoint_getpid(void *ctx) { return 0; }

SEC("raw_tp/sys_enter")
int raw_tp_sys_enter(void *ctx) { return 0; }

SEC("fentry/vfs_read")
int fentry_vfs_read(void *ctx) { return 0; }

SEC("fexit/vfs_read")
int fexit_vfs_read(void *ctx) { return 0; }

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("tc")
int tc_pass(struct __sk_buff *skb) { return 0; } // TC_ACT_OK

SEC("tcx/ingress")
int tcx_pass(struct __sk_buff *skb) { return -1; } // TCX_NEXT

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb) { return 1; }

SEC("socket")
int socket_filter(struct __sk_buff *skb) { return 0; }
