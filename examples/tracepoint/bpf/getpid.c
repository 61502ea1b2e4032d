// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// getpid.c: report each getpid(2) of the test process through a ring
// buffer (BPF_MAP_TYPE_RINGBUF: Linux 5.8). Hook: the
// syscalls:sys_enter_getpid tracepoint.

//go:build ignore

#include "common.h"

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = id >> 32;
	e->pid = (__u32)id;
	e->value = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
