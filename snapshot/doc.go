// Package snapshot keeps the saved states of guests that reached ready, so
// that later runs restore a VM instead of booting it.
//
// A snapshot is what QEMU's migration stream writes for a VM stopped when
// its agent said ready (74 MB for a 512 MiB x86_64 microvm, 60 MB for an
// arm64 virt machine: untouched memory is not written). It is valid only
// for a VM started with the same QEMU binary, the same machine and device
// arguments, kernel, initramfs, memory, CPUs and accelerator: all of these
// make up its Key, and its ID is their hash. Nothing per run is in a
// snapshot: the plan, the host's clock and entropy and the checks' files
// reach the restored agent over its channel (protocol.HostState,
// protocol.FileSpec).
//
// The cache promises:
//   - a snapshot is used only whole: the state file is written to a
//     temporary name (mode 0600, in a 0700 directory) and renamed into place
//     under the ID's lock, with its metadata (size, time, SHA-256) written
//     last, the same way;
//   - one snapshot per ID: of several runs that boot the same key at once,
//     the first to lock saves and the others go on without saving;
//   - a damaged snapshot is never restored: Find checks the state file
//     against its metadata (size, and the SHA-256 when the time changed)
//     and deletes one that does not match, returning ErrDamaged; a state
//     QEMU refuses to load is deleted by the caller (Remove), and so is one
//     whose content Snapshot.Verify, run while QEMU loads it, finds changed
//     (a byte patched with the time put back);
//   - a snapshot being restored is not deleted under QEMU: restores hold a
//     shared lock until QEMU has read the state, and removals take the
//     exclusive lock without waiting, leaving a snapshot in use for later;
//   - the cache is bounded: Trim removes the snapshots used least recently
//     (Find marks a use) past a size, and Prune what its caller no longer
//     wants and what a killed vmrunner left (temporaries, state files
//     without metadata).
package snapshot
