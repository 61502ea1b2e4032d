// SPDX-License-Identifier: GPL-2.0
// Verifier probes for vmrunner's default matrix: each program needs a
// kernel feature from a known upstream release, and one is rejected by
// every kernel. Build with `make generate` (clang -O2 -g -target bpf).
//
// No vmlinux.h: the one kernel type used through CO-RE is declared below
// with preserve_access_index, so the object builds from libbpf-dev alone.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

// task_struct as far as core_task_pid needs it; the real layout comes from
// the running kernel's BTF when the object is loaded.
struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

// bounded_loop: a loop the verifier must walk rather than see unrolled;
// bounded loops are accepted since 5.3 (2589726d12a1).
SEC("socket")
int bounded_loop(struct __sk_buff *skb)
{
	__u32 sum = 0;

#pragma clang loop unroll(disable)
	for (int i = 0; i < 64; i++)
		sum += bpf_get_prandom_u32() & i;
	return sum & 1;
}

static long add_random(__u64 index, void *ctx)
{
	*(__u32 *)ctx += bpf_get_prandom_u32() & index;
	return 0;
}

// uses_bpf_loop: the bpf_loop helper, 5.17 (e6f2dd0f8067).
SEC("socket")
int uses_bpf_loop(struct __sk_buff *skb)
{
	__u32 sum = 0;

	bpf_loop(64, add_random, &sum, 0);
	return sum & 1;
}

// large_program: well over the 4096 instructions that were the limit before
// 5.2 (c04c0d2b968a raised it to one million for privileged programs).
SEC("socket")
int large_program(struct __sk_buff *skb)
{
	__u32 x = skb->len;

	// An xorshift chain: nothing for the compiler to fold, no stack.
#pragma clang loop unroll(full)
	for (int i = 0; i < 500; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
	}
	return x & 1;
}

// core_task_pid: reads current->pid through a CO-RE relocation
// (BPF_CORE_READ, bpf_probe_read_kernel: 5.5).
SEC("tracepoint/syscalls/sys_enter_getpid")
int core_task_pid(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, pid) > 0;
}

// ringbuf_output: a ring buffer map with reserve and submit, 5.8
// (457f44363a88).
SEC("tracepoint/syscalls/sys_enter_getpid")
int ringbuf_output(void *ctx)
{
	__u32 *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	*e = bpf_get_prandom_u32();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// rejected_stack_oob: reads above the frame pointer, outside the stack;
// every kernel rejects it ("invalid read from stack").
SEC("socket")
int rejected_stack_oob(struct __sk_buff *skb)
{
	__u64 v;

	asm volatile("%0 = *(u64 *)(r10 + 8)" : "=r"(v));
	return v & 1;
}
