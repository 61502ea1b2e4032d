// SPDX-License-Identifier: GPL-2.0
// An object with maps and a constant but no program: a loader still
// creates its maps, and vmrunner still reports it.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

volatile const __u32 table_size = 128;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 128);
} shared_table SEC(".maps");
