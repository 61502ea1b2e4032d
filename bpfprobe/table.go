package bpfprobe

import (
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Kind is what a feature is.
type Kind string

// Kinds of features.
const (
	KindProgram Kind = "program"
	KindMap     Kind = "map"
	KindHelper  Kind = "helper"
)

// Feature is one probed kernel feature and the upstream release that first
// had it.
type Feature struct {
	Kind Kind
	// Name is the kernel's name without its prefix: "kprobe" for
	// BPF_PROG_TYPE_KPROBE, "ringbuf" for BPF_MAP_TYPE_RINGBUF,
	// "ringbuf_output" for bpf_ringbuf_output.
	Name string
	// Since is the first upstream release with the feature, and Commit the
	// upstream commit (12 hex digits) that added it.
	Since, Commit string
	// SinceArm64, when set, is the release that brought the feature to
	// arm64, later than Since.
	SinceArm64 string
	// Config, when set, is the kernel option without which the kernel
	// lacks the feature whatever its version ("BPF_LSM"): a kernel built
	// without it is not judged.
	Config string

	Program ebpf.ProgramType // KindProgram
	Map     ebpf.MapType     // KindMap
	Helper  asm.BuiltinFunc  // KindHelper
	// On lists the program types a helper is meant for: a helper missing
	// from one of them on a kernel at or past Since is a regression. Other
	// pairs are probed and reported, never judged.
	On []string
}

// ID is "program/kprobe", "map/ringbuf" or "helper/loop".
func (f Feature) ID() string { return string(f.Kind) + "/" + f.Name }

// SinceOn returns the release that added the feature on machine (uname -m:
// x86_64, aarch64).
func (f Feature) SinceOn(machine string) string {
	if f.SinceArm64 != "" && (machine == "aarch64" || machine == "arm64") {
		return f.SinceArm64
	}
	return f.Since
}

// tracingTypes are the program types that attach to kernel functions and
// events; networkTypes those that see packets.
var (
	tracingTypes = []string{"kprobe", "tracepoint", "raw_tracepoint", "perf_event"}
	allProbed    = []string{"kprobe", "tracepoint", "raw_tracepoint", "perf_event", "socket_filter", "sched_cls", "xdp", "cgroup_skb"}
)

// Features is every feature the features check knows, programs first, then
// maps, then helpers. Versions and commits are from the upstream kernel
// history (git describe --contains COMMIT); where a feature needs a config
// option that distributions may leave out, Config names it.
var Features = []Feature{
	{Kind: KindProgram, Name: "socket_filter", Program: ebpf.SocketFilter, Since: "3.19", Commit: "ddd872bc3098"},
	{Kind: KindProgram, Name: "kprobe", Program: ebpf.Kprobe, Since: "4.1", Commit: "2541517c32be", Config: "KPROBES"},
	{Kind: KindProgram, Name: "sched_cls", Program: ebpf.SchedCLS, Since: "4.1", Commit: "96be4325f443", Config: "NET_CLS_BPF"},
	{Kind: KindProgram, Name: "sched_act", Program: ebpf.SchedACT, Since: "4.1", Commit: "94caee8c312d", Config: "NET_ACT_BPF"},
	{Kind: KindProgram, Name: "tracepoint", Program: ebpf.TracePoint, Since: "4.7", Commit: "98b5c2c65c29"},
	{Kind: KindProgram, Name: "xdp", Program: ebpf.XDP, Since: "4.8", Commit: "6a773a15a1e8"},
	{Kind: KindProgram, Name: "perf_event", Program: ebpf.PerfEvent, Since: "4.9", Commit: "0515e5999a46"},
	{Kind: KindProgram, Name: "cgroup_skb", Program: ebpf.CGroupSKB, Since: "4.10", Commit: "0e33661de493", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "cgroup_sock", Program: ebpf.CGroupSock, Since: "4.10", Commit: "61023658760e", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "lwt_in", Program: ebpf.LWTIn, Since: "4.10", Commit: "3a0af8fd61f9", Config: "LWTUNNEL_BPF"},
	{Kind: KindProgram, Name: "lwt_out", Program: ebpf.LWTOut, Since: "4.10", Commit: "3a0af8fd61f9", Config: "LWTUNNEL_BPF"},
	{Kind: KindProgram, Name: "lwt_xmit", Program: ebpf.LWTXmit, Since: "4.10", Commit: "3a0af8fd61f9", Config: "LWTUNNEL_BPF"},
	{Kind: KindProgram, Name: "sock_ops", Program: ebpf.SockOps, Since: "4.13", Commit: "40304b2a1567", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "sk_skb", Program: ebpf.SkSKB, Since: "4.14", Commit: "b005fd189cec", Config: "BPF_STREAM_PARSER"},
	{Kind: KindProgram, Name: "cgroup_device", Program: ebpf.CGroupDevice, Since: "4.15", Commit: "ebc614f68736", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "sk_msg", Program: ebpf.SkMsg, Since: "4.17", Commit: "4f738adba30a", Config: "BPF_STREAM_PARSER"},
	{Kind: KindProgram, Name: "raw_tracepoint", Program: ebpf.RawTracepoint, Since: "4.17", Commit: "c4f6699dfcb8"},
	{Kind: KindProgram, Name: "cgroup_sock_addr", Program: ebpf.CGroupSockAddr, Since: "4.17", Commit: "4fbac77d2d09", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "lwt_seg6local", Program: ebpf.LWTSeg6Local, Since: "4.18", Commit: "004d4b274e2a", Config: "IPV6_SEG6_BPF"},
	{Kind: KindProgram, Name: "lirc_mode2", Program: ebpf.LircMode2, Since: "4.18", Commit: "f4364dcfc86d", Config: "BPF_LIRC_MODE2"},
	{Kind: KindProgram, Name: "sk_reuseport", Program: ebpf.SkReuseport, Since: "4.19", Commit: "2dbb9b9e6df6"},
	{Kind: KindProgram, Name: "flow_dissector", Program: ebpf.FlowDissector, Since: "4.20", Commit: "d58e468b1112"},
	{Kind: KindProgram, Name: "cgroup_sysctl", Program: ebpf.CGroupSysctl, Since: "5.2", Commit: "7b146cebe30c", Config: "CGROUP_BPF"},
	{Kind: KindProgram, Name: "raw_tracepoint_writable", Program: ebpf.RawTracepointWritable, Since: "5.2", Commit: "9df1c28bb752"},
	{Kind: KindProgram, Name: "cgroup_sockopt", Program: ebpf.CGroupSockopt, Since: "5.3", Commit: "0d01da6afc54", Config: "CGROUP_BPF"},
	// Tracing programs need a BPF trampoline: arm64 got one in 6.0 (efc9909fdce0).
	{Kind: KindProgram, Name: "tracing", Program: ebpf.Tracing, Since: "5.5", Commit: "f1b9509c2fb0", SinceArm64: "6.0"},
	{Kind: KindProgram, Name: "struct_ops", Program: ebpf.StructOps, Since: "5.6", Commit: "27ae7997a661"},
	{Kind: KindProgram, Name: "ext", Program: ebpf.Extension, Since: "5.6", Commit: "be8704ff07d2"},
	{Kind: KindProgram, Name: "lsm", Program: ebpf.LSM, Since: "5.7", Commit: "fc611f47f218", Config: "BPF_LSM"},
	{Kind: KindProgram, Name: "sk_lookup", Program: ebpf.SkLookup, Since: "5.9", Commit: "e9ddbb7707ff"},
	{Kind: KindProgram, Name: "syscall", Program: ebpf.Syscall, Since: "5.14", Commit: "79a7f8bdb159"},
	{Kind: KindProgram, Name: "netfilter", Program: ebpf.Netfilter, Since: "6.4", Commit: "fd9c663b9ad6", Config: "NETFILTER_BPF_LINK"},

	{Kind: KindMap, Name: "hash", Map: ebpf.Hash, Since: "3.19", Commit: "0f8e4bd8a1fc"},
	{Kind: KindMap, Name: "array", Map: ebpf.Array, Since: "3.19", Commit: "28fbcfa08d8e"},
	{Kind: KindMap, Name: "prog_array", Map: ebpf.ProgramArray, Since: "4.2", Commit: "04fd61ab36ec"},
	{Kind: KindMap, Name: "perf_event_array", Map: ebpf.PerfEventArray, Since: "4.3", Commit: "ea317b267e9d"},
	{Kind: KindMap, Name: "percpu_hash", Map: ebpf.PerCPUHash, Since: "4.6", Commit: "824bd0ce6c7c"},
	{Kind: KindMap, Name: "percpu_array", Map: ebpf.PerCPUArray, Since: "4.6", Commit: "a10423b87a7e"},
	{Kind: KindMap, Name: "stack_trace", Map: ebpf.StackTrace, Since: "4.6", Commit: "d5a3b1f69186"},
	{Kind: KindMap, Name: "cgroup_array", Map: ebpf.CGroupArray, Since: "4.8", Commit: "4ed8ec521ed5"},
	{Kind: KindMap, Name: "lru_hash", Map: ebpf.LRUHash, Since: "4.10", Commit: "29ba732acbee"},
	{Kind: KindMap, Name: "lru_percpu_hash", Map: ebpf.LRUCPUHash, Since: "4.10", Commit: "8f8449384ec3"},
	{Kind: KindMap, Name: "lpm_trie", Map: ebpf.LPMTrie, Since: "4.11", Commit: "b95a5c4db09b"},
	{Kind: KindMap, Name: "array_of_maps", Map: ebpf.ArrayOfMaps, Since: "4.12", Commit: "56f668dfe00d"},
	{Kind: KindMap, Name: "hash_of_maps", Map: ebpf.HashOfMaps, Since: "4.12", Commit: "bcc6b1b7ebf8"},
	{Kind: KindMap, Name: "devmap", Map: ebpf.DevMap, Since: "4.14", Commit: "546ac1ffb70d"},
	{Kind: KindMap, Name: "sockmap", Map: ebpf.SockMap, Since: "4.14", Commit: "174a79ff9515", Config: "BPF_STREAM_PARSER"},
	{Kind: KindMap, Name: "cpumap", Map: ebpf.CPUMap, Since: "4.15", Commit: "6710e1126934"},
	{Kind: KindMap, Name: "xskmap", Map: ebpf.XSKMap, Since: "4.18", Commit: "fbfc504a24f5", Config: "XDP_SOCKETS"},
	{Kind: KindMap, Name: "sockhash", Map: ebpf.SockHash, Since: "4.18", Commit: "81110384441a", Config: "BPF_STREAM_PARSER"},
	{Kind: KindMap, Name: "cgroup_storage", Map: ebpf.CGroupStorage, Since: "4.19", Commit: "de9cbbaadba5", Config: "CGROUP_BPF"},
	{Kind: KindMap, Name: "reuseport_sockarray", Map: ebpf.ReusePortSockArray, Since: "4.19", Commit: "5dc4c4b7d4e8"},
	{Kind: KindMap, Name: "percpu_cgroup_storage", Map: ebpf.PerCPUCGroupStorage, Since: "4.20", Commit: "b741f1630346", Config: "CGROUP_BPF"},
	{Kind: KindMap, Name: "queue", Map: ebpf.Queue, Since: "4.20", Commit: "f1a2e44a3aec"},
	{Kind: KindMap, Name: "stack", Map: ebpf.Stack, Since: "4.20", Commit: "f1a2e44a3aec"},
	{Kind: KindMap, Name: "sk_storage", Map: ebpf.SkStorage, Since: "5.2", Commit: "6ac99e8f23d4"},
	{Kind: KindMap, Name: "devmap_hash", Map: ebpf.DevMapHash, Since: "5.4", Commit: "6f9d451ab1a3"},
	{Kind: KindMap, Name: "struct_ops", Map: ebpf.StructOpsMap, Since: "5.6", Commit: "85d33df357b6"},
	{Kind: KindMap, Name: "ringbuf", Map: ebpf.RingBuf, Since: "5.8", Commit: "457f44363a88"},
	{Kind: KindMap, Name: "inode_storage", Map: ebpf.InodeStorage, Since: "5.10", Commit: "8ea636848aca", Config: "BPF_LSM"},
	{Kind: KindMap, Name: "task_storage", Map: ebpf.TaskStorage, Since: "5.11", Commit: "4cf1bc1f1045"},
	{Kind: KindMap, Name: "bloom_filter", Map: ebpf.BloomFilter, Since: "5.16", Commit: "9330986c0300"},
	{Kind: KindMap, Name: "user_ringbuf", Map: ebpf.UserRingbuf, Since: "6.1", Commit: "583c1f420173"},
	{Kind: KindMap, Name: "cgrp_storage", Map: ebpf.CgroupStorage, Since: "6.2", Commit: "c4bcfb38a95e"},
	{Kind: KindMap, Name: "arena", Map: ebpf.Arena, Since: "6.9", Commit: "317460317a02"},

	{Kind: KindHelper, Name: "perf_event_output", Helper: asm.FnPerfEventOutput, Since: "4.4", Commit: "a43eec304259", On: []string{"kprobe"}},
	{Kind: KindHelper, Name: "probe_read_kernel", Helper: asm.FnProbeReadKernel, Since: "5.5", Commit: "6ae08ae3dea2", On: tracingTypes},
	{Kind: KindHelper, Name: "probe_read_user", Helper: asm.FnProbeReadUser, Since: "5.5", Commit: "6ae08ae3dea2", On: tracingTypes},
	{Kind: KindHelper, Name: "ktime_get_boot_ns", Helper: asm.FnKtimeGetBootNs, Since: "5.8", Commit: "71d19214776e", On: allProbed},
	{Kind: KindHelper, Name: "ringbuf_output", Helper: asm.FnRingbufOutput, Since: "5.8", Commit: "457f44363a88", On: allProbed},
	{Kind: KindHelper, Name: "ringbuf_reserve", Helper: asm.FnRingbufReserve, Since: "5.8", Commit: "457f44363a88", On: allProbed},
	{Kind: KindHelper, Name: "get_current_task_btf", Helper: asm.FnGetCurrentTaskBtf, Since: "5.11", Commit: "3ca1032ab7ab", On: tracingTypes},
	{Kind: KindHelper, Name: "get_func_ip", Helper: asm.FnGetFuncIp, Since: "5.15", Commit: "9ffd9f3ff719", On: []string{"kprobe"}},
	{Kind: KindHelper, Name: "loop", Helper: asm.FnLoop, Since: "5.17", Commit: "e6f2dd0f8067", On: allProbed},
}

// HelperProgramTypes are the program types helpers are probed with.
// cilium/ebpf has no helper probe for lsm and tracing programs (they need
// an attach target): the guest probes those with a target of its own.
var HelperProgramTypes = []string{"kprobe", "tracepoint", "raw_tracepoint", "perf_event", "socket_filter", "sched_cls", "xdp", "cgroup_skb", "lsm", "tracing"}

// Lookup returns the feature of kind with name.
func Lookup(kind Kind, name string) (Feature, bool) {
	i := slices.IndexFunc(Features, func(f Feature) bool { return f.Kind == kind && f.Name == name })
	if i < 0 {
		return Feature{}, false
	}
	return Features[i], true
}

// Names lists the names of the features of kind, in table order.
func Names(kind Kind) []string {
	var names []string
	for _, f := range Features {
		if f.Kind == kind {
			names = append(names, f.Name)
		}
	}
	return names
}

// Verdict is how a probe result compares with the table.
type Verdict string

// Verdicts.
const (
	// VerdictOK: supported, or unsupported on a kernel older than Since.
	VerdictOK Verdict = "ok"
	// VerdictMissing: unsupported on a kernel at or past Since that has
	// the feature's config option: the check fails.
	VerdictMissing Verdict = "missing"
	// VerdictBackport: supported on a kernel older than Since.
	VerdictBackport Verdict = "backport"
	// VerdictNotBuilt: unsupported, and the kernel lacks Config.
	VerdictNotBuilt Verdict = "not-built"
	// VerdictUnjudged: the probe errored, or a helper on a program type
	// not in On.
	VerdictUnjudged Verdict = "unjudged"
)

// Judge compares one probe outcome on kernel v of machine (uname -m) with
// the table. supported is nil when the probe errored; config holds the
// kernel's options (nil when unknown); progType is the program type of a
// helper probe.
func Judge(f Feature, progType string, supported *bool, v Version, machine string, config map[string]string) Verdict {
	if supported == nil || (f.Kind == KindHelper && !slices.Contains(f.On, progType)) {
		return VerdictUnjudged
	}
	since, _, _ := parseNumbers(f.SinceOn(machine))
	past := v.Compare(since) >= 0
	switch {
	case *supported && !past:
		return VerdictBackport
	case *supported:
		return VerdictOK
	case !past:
		return VerdictOK
	case f.Config != "" && config != nil && config[f.Config] != "y" && config[f.Config] != "m":
		return VerdictNotBuilt
	default:
		return VerdictMissing
	}
}
