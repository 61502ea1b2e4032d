// SPDX-License-Identifier: GPL-2.0
// Uprobes on a user binary's function, as Beyla's Go and OpenSSL tracers
// place them. The section names the symbol; the binary comes from the
// loader (here: uprobe_binary in the matrix, testdata/uprobe-target).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe/main.main")
int uprobe_main(void *ctx) { return 0; }

SEC("uretprobe/main.main")
int uretprobe_main(void *ctx) { return 0; }
