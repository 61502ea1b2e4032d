// Package runner carries out vmrunner's commands over many VMs: run (the
// whole matrix, in parallel, with retries and shards), exec (one program
// on the kernels named), repro (one check on one kernel, its verifier log
// in full), repro --watch (a VM kept up, plan after plan) and repro
// --shell (a shell in the VM on the user's terminal).
//
// Each command provisions its targets through the one Provisioner: the kernel
// resolved with the lock's pin (package kernels), the initramfs built
// (package initramfs) with the agent found beside the binary, the files a
// check or program needs packed, the VM sized. Each VM then runs through
// package internal/vm; the results go to a results.Store (package
// results) with their report.
//
// Promises:
//   - Every planned check of every target gets exactly one results.Record,
//     including targets that could not be provisioned (their records say why,
//     with an ErrorKind) and checks that do not run on an arch (skip).
//   - Only infrastructure failures before a VM showed life are retried;
//     check failures, panics and hangs are results, never retried.
//   - results.json is rewritten atomically after each VM (results.Store),
//     so an interrupted run leaves a readable store naming the VMs it lacks.
//   - Bad input (a matrix, a program, a directory too large to pack) is an
//     error matching matrix.ErrBadMatrix (exit code 2), never a run.
package runner
