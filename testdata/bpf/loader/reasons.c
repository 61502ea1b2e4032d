// SPDX-License-Identifier: GPL-2.0
// One program per failure reason that vmrunner names (docs/reasons.md), so
// that the verifier check on the default kernels gives each reason from a
// real kernel: the fixtures of package reason come from these loads.
// Build with `make generate`.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

// A bloom filter map: 5.16 (9330986c0300). Older kernels cannot create it
// (MAP_TYPE_UNSUPPORTED).
struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u32);
	__uint(max_entries, 16);
} seen SEC(".maps");

// map_type_new uses the bloom filter.
SEC("socket")
int map_type_new(struct __sk_buff *skb)
{
	__u32 v = skb->len;

	return bpf_map_peek_elem(&seen, &v) == 0;
}

// helper_for_type calls a helper socket filters may not use, on every
// kernel (HELPER_UNSUPPORTED: "unknown func bpf_get_current_pid_tgid#14").
SEC("socket")
int helper_for_type(struct __sk_buff *skb)
{
	return bpf_get_current_pid_tgid() & 1;
}

// Two frames of 320 bytes each, filled by bpf_skb_load_bytes: over the
// 512-byte combined stack (STACK_LIMIT: "combined stack size of 2 calls is
// 640. Too large").
static __attribute__((noinline)) int deep(struct __sk_buff *skb)
{
	char buf[320];

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)))
		return 0;
	return buf[0];
}

SEC("socket")
int stack_limit(struct __sk_buff *skb)
{
	char buf[320];

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)))
		return 0;
	return deep(skb) + buf[1];
}

// fentry_renamed attaches to account_page_dirtied, which 5.16 folded
// into folio_account_dirtied (ATTACH_TARGET_MISSING on 6.1 and later).
SEC("fentry/account_page_dirtied")
int fentry_renamed(void *ctx)
{
	return 0;
}

// prog_type_new is a netfilter program: 6.4 (fd9c663b9ad6).
// PROG_TYPE_UNSUPPORTED before.
SEC("netfilter")
int prog_type_new(void *ctx)
{
	return 1; // NF_ACCEPT
}

// iterations bounds walk_loop's loop; the verifier reads it from the frozen
// .rodata and walks that many iterations, so a loader (or a matrix's
// constants) makes the program heavier without a rebuild: the complexity
// budget and `report verifier` are tested with it.
volatile const __u32 iterations = 64;

SEC("socket")
int walk_loop(struct __sk_buff *skb)
{
	__u32 sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < iterations && i < 4096; i++)
		sum += bpf_get_prandom_u32() & i;
	return sum & 1;
}
