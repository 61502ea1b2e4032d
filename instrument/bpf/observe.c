// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// observe.c: classify the workload's socket writes by their first bytes and
// count them per protocol, operation and status. Built by bpf2go (see
// ../gen.go); the objects next to it are committed.
//
// Hooks: the syscalls:sys_enter_write and syscalls:sys_enter_sendto
// tracepoints (both since 2.6.37, and arch-independent: the arguments are at
// the same offsets in the tracepoint record on x86_64 and arm64). The
// socket behind the fd is found through task->files (CO-RE), so the
// direction of a message (client or server side) comes from the ports.
//
// Built twice: once with bpf_probe_read_user / bpf_probe_read_kernel (5.5+)
// and once with -DLEGACY_PROBE_READ, using bpf_probe_read for both, for
// older kernels. Every loop is unrolled so that kernels before 5.3 (no
// bounded loops) accept the programs too.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
};
#define BPF_ANY 0
#define BPF_NOEXIST 1

#include <bpf/bpf_helpers.h>

#ifdef LEGACY_PROBE_READ
#define read_user(dst, sz, src) bpf_probe_read(dst, sz, src)
#define read_kernel(dst, sz, src) bpf_probe_read(dst, sz, src)
#else
#define read_user(dst, sz, src) bpf_probe_read_user(dst, sz, src)
#define read_kernel(dst, sz, src) bpf_probe_read_kernel(dst, sz, src)
#endif

// core_read reads *src (a kernel pointer expression) with a CO-RE
// relocation, so field offsets come from the running kernel's BTF.
#define core_read(dst, src) read_kernel(dst, sizeof(*(dst)), __builtin_preserve_access_index(src))

// The kernel types used, with only the fields read; names match vmlinux.
struct file;
struct inode {
	__u16 i_mode;
} __attribute__((preserve_access_index));
struct fdtable {
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));
struct task_struct {
	struct files_struct *files;
} __attribute__((preserve_access_index));
struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));
struct sock_common {
	__be16 skc_dport;
	__u16 skc_num;
} __attribute__((preserve_access_index));
struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));
struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

#define S_IFMT 00170000
#define S_IFSOCK 0140000

// Protocols and roles of a port (ports map) and in counter keys.
enum {
	PROTO_HTTP = 1,
	PROTO_GRPC = 2,
	PROTO_PG = 3,
	PROTO_REDIS = 4,
};
enum {
	ROLE_PLAIN = 0,
	ROLE_GRPC_UNARY = 1,
	ROLE_GRPC_STREAM = 2,
};

// Kinds of counted events.
enum {
	KIND_REQUEST = 1,      // client side: HTTP request line, SQL statement, RESP command, gRPC HEADERS
	KIND_RESPONSE = 2,     // server side: HTTP status line, RESP reply type
	KIND_GRPC_DATA = 3,    // server side: gRPC DATA frames (response messages)
	KIND_GRPC_END = 4,     // server side: gRPC HEADERS with END_STREAM (trailers)
	KIND_UNCLASSIFIED = 5, // a write on a workload port that matched nothing
};

#define OP_LEN 24

struct key {
	__u8 proto;
	__u8 kind;
	__u16 status;
	__u32 role;
	char op[OP_LEN];
};

struct port_info {
	__u8 proto;
	__u8 role;
	__u16 pad;
};

#define CONFIG_BROKEN_STATUS 1

struct settings {
	__u32 tgid;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} config SEC(".maps");

// servers: processes other than the client's (settings.tgid) whose
// writes are looked at: real servers running apart, like redis-server.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u8);
} servers SEC(".maps");

// ports: server port (host order) -> protocol and role.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);
	__type(value, struct port_info);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct key);
	__type(value, __u64);
} counts SEC(".maps");

// frames are the HTTP/2 frame counts of one write. They live in a map
// value, not on the stack: the verifier does not track map memory, so the
// states of the unrolled frame walk with different counts are the same to
// it and get pruned (with counters in registers it processes ~100 times
// more instructions).
struct frames {
	__u64 headers;
	__u64 data;
	__u64 ends;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct frames);
} scratch SEC(".maps");

// The syscalls:sys_enter_write / sys_enter_sendto record: 8 bytes of common
// fields, the syscall number (padded to 8), then the arguments.
struct sys_enter_args {
	__u64 common;
	__s64 nr;
	__u64 fd;
	__u64 buf;
	__u64 count;
};

static __always_inline void add(struct key *k, __u64 n)
{
	if (n == 0)
		return;
	__u64 *v = bpf_map_lookup_elem(&counts, k);
	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(&counts, k, &n, BPF_NOEXIST) == 0)
		return;
	// Another CPU inserted the key first.
	v = bpf_map_lookup_elem(&counts, k);
	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline int is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static __always_inline char upper(char c)
{
	return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

static __always_inline int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

// copy_word copies src up to the first space, CR or NUL into op.
static __always_inline void copy_word(char *op, const char *src, int upcase)
{
	int done = 0;
#pragma unroll
	for (int i = 0; i < OP_LEN - 1; i++) {
		char c = src[i];
		if (c == ' ' || c == '\r' || c == '\n' || c == 0 || c == ';' || c == '(')
			done = 1;
		if (!done)
			op[i] = upcase ? upper(c) : c;
	}
}

#define HEAD 48

// http classifies an HTTP/1.x request line (client) or status line (server).
static __always_inline void http(struct key *k, const char *b, int server, __u32 flags)
{
	if (server) {
		// "HTTP/1.1 503 "
		if (b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/' || b[8] != ' ')
			goto unclassified;
		char d0 = b[9], d1 = b[10], d2 = b[11];
		if (flags & CONFIG_BROKEN_STATUS) {
			// The deliberately broken variant: off by one.
			d0 = b[8];
			d1 = b[9];
			d2 = b[10];
		}
		__u16 status = 0;
		if (is_digit(d0))
			status += (d0 - '0') * 100;
		if (is_digit(d1))
			status += (d1 - '0') * 10;
		if (is_digit(d2))
			status += d2 - '0';
		k->kind = KIND_RESPONSE;
		k->status = status;
		add(k, 1);
		return;
	}
	// "GET /path HTTP/1.1": a method in capitals, a space, a path.
	int sp = 0, slash = 0;
#pragma unroll
	for (int i = 1; i < 8; i++) {
		if (!sp && b[i] == ' ') {
			sp = i;
			slash = b[i + 1] == '/';
		}
	}
	if (sp == 0 || !slash || !is_upper(b[0]))
		goto unclassified;
	k->kind = KIND_REQUEST;
	// op = "METHOD /path"
	int end = 0;
#pragma unroll
	for (int i = 0; i < OP_LEN - 1; i++) {
		char c = b[i];
		if (i > sp && (c == ' ' || c == '?'))
			end = 1;
		if (!end)
			k->op[i] = c;
	}
	add(k, 1);
	return;
unclassified:
	k->kind = KIND_UNCLASSIFIED;
	add(k, 1);
}

// pg classifies a PostgreSQL frontend message: Query ('Q') or Parse ('P').
static __always_inline void pg(struct key *k, const char *b, const char *user, int server)
{
	if (server)
		return; // backend messages are not counted
	// The startup message, SSLRequest and the other frontend messages
	// of a session are not counted; only Query and Parse are.
	if (b[0] == 0 || b[0] == 'X' || b[0] == 'S' || b[0] == 'B' || b[0] == 'D' || b[0] == 'E' || b[0] == 'H')
		return;
	if ((b[0] != 'Q' && b[0] != 'P') || b[1] != 0)
		goto unclassified;
	int at = 5;
	if (b[0] == 'P') {
		// Parse: statement name, NUL, query. pgx's unnamed statement
		// is an empty name; skip up to 31 bytes of a named one.
		int found = 0;
#pragma unroll
		for (int i = 5; i < 37; i++) {
			if (!found && b[i] == 0) {
				found = 1;
				at = i + 1;
			}
		}
		if (!found)
			goto unclassified;
	}
	char sql[OP_LEN] = {};
	if (read_user(sql, sizeof(sql), user + at) != 0)
		goto unclassified;
	k->kind = KIND_REQUEST;
	k->status = b[0];
	copy_word(k->op, sql, 1);
	add(k, 1);
	return;
unclassified:
	k->kind = KIND_UNCLASSIFIED;
	add(k, 1);
}

// redis classifies a RESP command array (client) or a reply (server).
static __always_inline void redis(struct key *k, const char *b, const char *user, int server)
{
	if (server) {
		char c = b[0];
		if (c != '+' && c != '-' && c != ':' && c != '$' && c != '*')
			goto unclassified;
		k->kind = KIND_RESPONSE;
		k->status = c;
		add(k, 1);
		return;
	}
	// "*3\r\n$3\r\nset\r\n..."
	if (b[0] != '*')
		goto unclassified;
	int dollar = 0;
#pragma unroll
	for (int i = 1; i < 8; i++) {
		if (!dollar && b[i] == '\n' && b[i + 1] == '$')
			dollar = i + 1;
	}
	if (dollar == 0)
		goto unclassified;
	int name = 0;
#pragma unroll
	for (int i = 2; i < 16; i++) {
		if (!name && i > dollar && b[i] == '\n')
			name = i + 1;
	}
	char cmd[OP_LEN] = {};
	if (name == 0 || read_user(cmd, sizeof(cmd), user + name) != 0)
		goto unclassified;
	k->kind = KIND_REQUEST;
	copy_word(k->op, cmd, 1);
	add(k, 1);
	return;
unclassified:
	k->kind = KIND_UNCLASSIFIED;
	add(k, 1);
}

#define H2_PREFACE_LEN 24
#define H2_FRAMES 32
#define H2_DATA 0
#define H2_HEADERS 1
#define H2_END_STREAM 1

// grpc walks the HTTP/2 frames of one write: the client's HEADERS frames
// are calls; the server's DATA frames are response messages and its HEADERS
// frames with END_STREAM are trailers (one per finished call). Unary and
// streaming calls are told apart by the server port (one per kind).
static __always_inline void grpc(struct key *k, const char *b, const char *user, __u64 count, int server)
{
	__u32 zero = 0;
	struct frames *f = bpf_map_lookup_elem(&scratch, &zero);
	if (!f)
		return;
	f->headers = 0;
	f->data = 0;
	f->ends = 0;
	__u64 off = 0;
	// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" starts a client connection.
	if (b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ')
		off = H2_PREFACE_LEN;
#pragma unroll
	for (int i = 0; i < H2_FRAMES; i++) {
		if (off + 9 <= count) {
			__u8 h[9];
			if (read_user(h, sizeof(h), user + off) == 0) {
				__u32 len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
				if (h[3] == H2_HEADERS) {
					f->headers++;
					if (h[4] & H2_END_STREAM)
						f->ends++;
				}
				if (h[3] == H2_DATA)
					f->data++;
				off += 9 + len;
			} else {
				off = count;
			}
		}
	}
	if (server) {
		k->kind = KIND_GRPC_DATA;
		add(k, f->data);
		k->kind = KIND_GRPC_END;
		add(k, f->ends);
	} else {
		k->kind = KIND_REQUEST;
		add(k, f->headers);
	}
}

static __always_inline int observe(struct sys_enter_args *ctx)
{
	__u32 zero = 0;
	struct settings *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->tgid == 0)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid != cfg->tgid && !bpf_map_lookup_elem(&servers, &tgid))
		return 0;

	// fd -> struct file -> struct socket -> struct sock -> ports.
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = 0;
	struct fdtable *fdt = 0;
	struct file **fds = 0;
	struct file *f = 0;
	struct inode *ino = 0;
	__u16 mode = 0;
	if (core_read(&files, &task->files) || !files)
		return 0;
	if (core_read(&fdt, &files->fdt) || !fdt)
		return 0;
	if (core_read(&fds, &fdt->fd) || !fds)
		return 0;
	if (read_kernel(&f, sizeof(f), &fds[ctx->fd & 0xffff]) || !f)
		return 0;
	if (core_read(&ino, &f->f_inode) || !ino)
		return 0;
	if (core_read(&mode, &ino->i_mode) || (mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = 0;
	struct sock *sk = 0;
	if (core_read(&sock, (struct socket **)&f->private_data) || !sock)
		return 0;
	if (core_read(&sk, &sock->sk) || !sk)
		return 0;
	__u16 lport = 0, dport = 0;
	if (core_read(&lport, &sk->__sk_common.skc_num))
		return 0;
	if (core_read(&dport, &sk->__sk_common.skc_dport))
		return 0;
	dport = __builtin_bswap16(dport);

	int server = 1;
	struct port_info *pi = bpf_map_lookup_elem(&ports, &lport);
	if (!pi) {
		server = 0;
		pi = bpf_map_lookup_elem(&ports, &dport);
	}
	if (!pi)
		return 0;

	const char *user = (const char *)ctx->buf;
	__u64 count = ctx->count;
	char b[HEAD] = {};
	__u32 n = count < HEAD ? count : HEAD;
	if (n == 0 || n > HEAD || read_user(b, n, user) != 0)
		return 0;

	struct key k = {};
	k.proto = pi->proto;
	k.role = pi->role;
	switch (pi->proto) {
	case PROTO_HTTP:
		http(&k, b, server, cfg->flags);
		break;
	case PROTO_GRPC:
		grpc(&k, b, user, count, server);
		break;
	case PROTO_PG:
		pg(&k, b, user, server);
		break;
	case PROTO_REDIS:
		redis(&k, b, user, server);
		break;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct sys_enter_args *ctx)
{
	return observe(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter_args *ctx)
{
	return observe(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
