// Package bench measures vmrunner itself (vmrunner bench): the whole
// matrix booted and restored from snapshots, single boots per profile and
// accelerator, and repro --watch's reload-to-verdict time, and prints the
// figures with the machine's load beside them.
//
// Promises: it runs the same code paths as run and repro --watch (package
// vmrunner's Run and ReproWatch), with the lock's pinned kernels, so what it
// measures is what users get; its figures are medians of repeated runs,
// and it writes only under its own output directory.
package bench
