// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// loop.c: on each getpid(2) of the test process, sum 0..99 with the
// bpf_loop helper (Linux 5.17) and report the sum through the ring buffer.
// Kernels without bpf_loop reject the program: the test skips there.

//go:build ignore

#include "common.h"

struct sum_ctx {
	__u64 sum;
};

static long add_index(__u32 i, void *data)
{
	struct sum_ctx *c = data;
	c->sum += i;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int sum_with_loop(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	struct sum_ctx c = {0};
	bpf_loop(100, add_index, &c, 0);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = id >> 32;
	e->pid = (__u32)id;
	e->value = c.sum;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
