// Package reason says why a BPF program did not load or attach, as one of
// the stable codes of protocol.Reason, with a detail naming what it is
// about (the helper and its release, the function, the relocation, the line
// the verifier stopped at).
//
// Contract:
//   - Classify is a pure function of what the kernel and the loader said:
//     cilium/ebpf's error values (errors.Is with ebpf.ErrNotSupported,
//     errors.As with *ebpf.VerifierError), the errno the kernel returned,
//     the verifier's log lines, and facts the caller established by asking
//     the kernel (does it have this program type, this map type, BTF).
//     It never reads the text of vmrunner's own messages.
//   - Every failed load gets a reason; VERIFIER_REJECTED is the verifier's
//     catch-all and LOADER the loader's, each with the decisive line.
//   - The table test (reason_test.go) replays logs and errnos captured from
//     the default kernels (testdata/, made by matrices/reasons.yaml).
package reason
