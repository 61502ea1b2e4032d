// Package doctor says what this machine can do for vmrunner and what to fix:
// QEMU per guest arch, KVM, the cache directory, the Debian keyring, the Go
// toolchain (for `go install` users) and snapshots. Each Finding carries
// the command that fixes it; a Block finding stops a run, a Warn finding
// makes it slower or less checked.
//
// Checks are cheap (a PATH lookup, one QEMU -version per arch, a statfs, an
// open of the KVM device, a temporary file): `vmrunner run` calls them
// before it starts and prints the first blocking one.
package doctor
