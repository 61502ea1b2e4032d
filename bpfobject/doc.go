// Package bpfobject is what vmrunner knows about compiled BPF ELF objects
// beyond what cilium/ebpf reads from them, shared by the host (which checks
// matrix.yaml against the objects before anything boots) and the guest
// agent (which loads them): the per-arch names bpf2go gives its objects,
// the constants a loader may set and how their values are typed, and the
// map sizes a loader may override.
//
// Both sides call the same functions on the same object, so a value the
// host accepted is one the guest can set; the guest still checks, and its
// error then names the object that changed.
package bpfobject
