// Package kernels turns a kernel source from matrix.yaml into a Kernel: a
// bootable image, its config and its module tree, on local disk, verified and
// identified by the SHA-256 of what was downloaded.
//
// Contract:
//
//   - Resolve returns a Kernel whose files exist and whose architecture was
//     checked with Inspect. Errors wrap the sentinels of kernel.go: anything
//     the user can fix in the matrix wraps ErrBadInput (ErrNotFound,
//     ErrNotAKernel, ErrWrongArch); ErrChecksum, ErrSignature and
//     ErrUnreachable are infrastructure failures.
//   - Debian kernels are trusted through the archive's OpenPGP-signed
//     InRelease: its SHA256 list vouches for the Packages index, which
//     vouches for the .deb. Without a keyring the chain still holds from
//     InRelease down, and a warning says so.
//   - The cache (see Cache) is content addressed and shared between
//     processes: blobs/sha256/<hex> holds downloads, kernels/<hex>/ the
//     extracted kernel with kernel.json written last, index/ the resolutions
//     of suites to packages (valid 24h; used stale when the mirror is
//     unreachable). Every file appears by rename, so a crash leaves no
//     half-written entry, and work is serialised with Cache.Lock.
//   - Other sources (spec.go): oci (an image pulled by platform, cached by
//     manifest digest), ubuntu-mainline (debs verified against the
//     directory's CHECKSUMS), deb (by URL with a required SHA-256, or local
//     files), file (a kernel left by make) and build (make from a source
//     tree, with the fragments of config/). They all end in the same
//     kernels/<key>/ layout and Kernel record; Origin.Files lists their
//     inputs with SHA-256, which a LockFile pins (lock.go).
//   - A warm Resolve reads two small JSON files and touches no network.
//   - Inspect identifies a kernel image by its contents, never by its name.
package kernels
