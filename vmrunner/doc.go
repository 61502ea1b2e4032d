// Package vmrunner is the host controller: it reads a matrix (package
// internal/matrix), prepares each target
// (prepare.go: its kernel resolved with the lock's pin by package kernels,
// its initramfs built by package initramfs, its VM size; every command
// prepares targets through the one Preparer), boots one QEMU per kernel ×
// arch, and stores the results (package results) with their report.html
// (package report).
//
// One VM: its QEMU process, QMP monitor and serial console are package
// internal/qemu; the guest protocol's state
// machine (session.go, package protocol); runVM, which watches them with its
// timers (vm.go); classify, a pure function that says how the VM ended
// (classify.go); and the records made of it (records.go). Restoring a VM
// from its snapshot instead of booting it, saving it at ready, and the
// plan's host state and files are in snapshot.go (the
// cache itself is package snapshot); repro --watch, a VM kept up for plan
// after plan, in repro_watch.go.
//
// The user's own programs (vmrunner exec, exec.go, and the test check,
// test.go) go through the same path as the built-in checks: the program,
// its libraries (package program) and its directory are packed per run
// (share.go) and bound by the guest at their own paths; their output is
// saved as it arrives and passed on live (output.go); Go test output is
// turned into one record per test on the host (gotest.go, package
// internal/gotest). Commands without a matrix file take kernel names from
// the built-in copy of the repository's matrix.yaml (matrix_default.go).
//
// Promises:
//   - Every planned check of every target gets exactly one results.Record,
//     whatever happens to the VM: a VM that never reports "done" yields status
//     error with an ErrorKind, never a pass. A VM whose conversation did not
//     end with done and a clean power-off also gets a record of its own
//     (check VMCheck), so the run's exit code says it.
//   - No QEMU process outlives runVM: it is killed on every path out, and dies
//     with vmrunner through PR_SET_PDEATHSIG.
//   - Everything read from the guest is bounded (message size, per-VM totals
//     of messages, bytes, results and artifacts, console size), validated in
//     protocol order, and sanitised once where it enters (session, console);
//     guest strings are never used as paths or shell words, and artifacts
//     never land on the host's own files.
//   - results.json is rewritten atomically after each VM (results.Store).
//   - A restored VM tells the same truths as a booted one: its clock is the
//     host's and its CRNG reseeded with host entropy before its first check
//     (protocol.HostState), its records say "boot": "snapshot"; a snapshot
//     that does not restore is deleted and the VM boots, never failing the
//     run for it.
package vmrunner
