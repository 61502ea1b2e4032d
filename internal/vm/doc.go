// Package vm runs one VM through its life and says what it reported: it
// starts QEMU (package internal/qemu) or restores it from a snapshot,
// talks the guest protocol with its agent (package protocol), sends the
// plan, saves what the guest sends (results, program output, artifacts,
// Go test events), watches the boot, silence and check timers, asks a hung
// kernel for its dumps, and classifies how the VM ended into records.
//
// Promises:
//   - Every planned check gets exactly one results.Record, whatever happens
//     to the VM: a VM that never reports "done" yields status error with an
//     ErrorKind, never a pass. A VM whose conversation did not end with
//     done and a clean power-off also gets a record of its own (VMCheck).
//   - No QEMU process outlives Run: it is killed on every path out.
//   - Everything read from the guest is bounded (message size, per-VM totals
//     of messages, bytes, results and artifacts), validated in protocol
//     order, and sanitised once where it enters; guest strings are never
//     used as paths or shell words, and artifacts never land on the host's
//     own files.
//   - A restored VM tells the same truths as a booted one: its clock is the
//     host's and its CRNG reseeded with host entropy before its first
//     check, its records say "boot": "snapshot"; a snapshot that does not
//     restore is deleted and the VM boots, never failing the run for it.
//   - Classify is a pure function of what was observed.
package vm
