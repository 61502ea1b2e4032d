// Package bpfprobe holds what both sides of vmrunner know about eBPF
// features and kernel versions: the upstream release each probed program
// type, map type and helper first appeared in (Features), kernel versions
// parsed from uname -r (ParseRelease), and the version ranges matrix.yaml
// uses to say on which kernels a program is expected to be rejected
// (ParseRange).
//
// The host validates matrix.yaml with it; the guest agent judges what it
// probed with it. Nothing here touches the running kernel.
package bpfprobe
