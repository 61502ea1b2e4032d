// SPDX-License-Identifier: GPL-2.0
// A kprobe that reads its third argument from pt_regs, whose layout differs
// per arch. bpf2go builds one object per target: kprobe_args_x86_bpfel.o
// (-D__TARGET_ARCH_x86) and kprobe_args_arm64_bpfel.o; wrong_arch.o is the
// x86 build under a name that says nothing, to see it fail on arm64 (its
// CO-RE relocation of pt_regs.dx finds no such field there).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long dx;
} __attribute__((preserve_access_index));
#define PARM3(regs) ((regs)->dx)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	unsigned long regs[31];
} __attribute__((preserve_access_index));
#define PARM3(regs) ((regs)->regs[2])
#else
#error "build with -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64"
#endif

__u64 large_reads;

SEC("kprobe/vfs_read")
int read_count(struct pt_regs *regs)
{
	if (PARM3(regs) > 65536)
		large_reads++;
	return 0;
}
