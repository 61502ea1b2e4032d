// SPDX-License-Identifier: GPL-2.0
// Maps pinned by name (LIBBPF_PIN_BY_NAME), as most of Beyla's tracers
// declare them: a loader must give them a directory on bpffs. Both programs
// use pinned_counts, so they must share one map.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_config SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 key = skb->protocol;
	__u64 one = 1, *n = bpf_map_lookup_elem(&pinned_counts, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&pinned_counts, &key, &one, BPF_NOEXIST);
	return 0;
}

SEC("socket")
int read_config(struct __sk_buff *skb)
{
	__u32 key = 0, *limit = bpf_map_lookup_elem(&pinned_config, &key);
	__u64 *n = bpf_map_lookup_elem(&pinned_counts, &key);

	return limit && n && *n > *limit;
}
