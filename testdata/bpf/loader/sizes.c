// SPDX-License-Identifier: GPL-2.0
// A map sized at run time: max_entries 0 in the object, set by the loader
// (Beyla's network flow tracer does this). no_maps uses no map and loads
// whatever size the loader gives flows.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 0);
} flows SEC(".maps");

SEC("socket")
int track_flows(struct __sk_buff *skb)
{
	__u32 key = skb->hash;
	__u64 len = skb->len;

	bpf_map_update_elem(&flows, &key, &len, BPF_ANY);
	return 0;
}

SEC("socket")
int no_maps(struct __sk_buff *skb)
{
	return skb->len > 1500;
}
