// Package qemu starts and stops the QEMU process of one VM and talks to it:
// the command line built from a Config and the per-arch table of machine
// settings, the QMP monitor, saving and loading a VM's state (migration to
// and from a file), the per-VM socket directory, the choice of accelerator
// (KVM when usable, else TCG) and the serial console's capture.
//
// It knows nothing of checks, plans or results beyond the console's splats:
// what a VM is for is the caller's business.
//
// Promises:
//   - A Process never outlives its Close, which every caller defers: QEMU is
//     killed on every path out, and dies with vmrunner through
//     PR_SET_PDEATHSIG.
//   - Its sockets outlive their connections by no more than a moment: each
//     socket's file goes once it is connected (QEMU connects each once) and
//     the socket directory with the last, so a vmrunner killed with SIGKILL
//     while its VM runs leaves no socket behind.
//   - Start returns a paused QEMU (-S) whose monitor answers, or an error; a
//     QEMU that ends before its monitor answers is a *StartError carrying
//     what QEMU printed, the real reason.
//   - The console is read to EOF whatever its size (a chatty guest never
//     blocks on a full pipe); console.log is cut at 64 MiB, and what is kept
//     in memory for excerpts and splats is bounded.
//   - A Config's SnapshotArgs leave out everything that differs between two
//     runs of the same VM (socket paths, file locations, the host's measured
//     TSC rate), so a snapshot key made of them names the VM, not the run.
package qemu
