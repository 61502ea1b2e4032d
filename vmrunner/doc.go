// Package vmrunner is the host controller: it reads a matrix (matrix.go,
// matrix_parse.go, matrix_yaml.go; each check's parameters in checks.go and
// the check's own file, btf.go, verifier.go, …), prepares each target
// (prepare.go: its kernel resolved with the lock's pin by package kernels,
// its initramfs built by package initramfs, its VM size; every command
// prepares targets through the one Preparer), boots one QEMU per kernel ×
// arch (qemu*.go), watches it through
// QMP (qmp.go) and its serial console (console.go), talks to the guest agent
// over virtio-serial (vm.go, package protocol) and stores the results
// (package results) with their report.html (package report).
//
// Promises:
//   - Every planned check of every target gets exactly one results.Record,
//     whatever happens to the VM: a VM that never reports "done" yields status
//     error with an ErrorKind, never a pass.
//   - No QEMU process outlives runVM: it is killed on every path out, and dies
//     with vmrunner through PR_SET_PDEATHSIG.
//   - Everything read from the guest is bounded (message size, number of
//     results and logs, console size) and validated; guest strings are never
//     used as paths or shell words.
//   - results.json is rewritten atomically after each VM (results.Store).
package vmrunner
