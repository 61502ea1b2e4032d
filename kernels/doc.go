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
//   - Ubuntu kernels (ubuntu.go) go through the same archive code as
//     Debian's (resolveArchive): InRelease signed by Ubuntu's keyring,
//     Packages, then linux-image-unsigned-<abi>-<flavour> and
//     linux-modules-<abi>-<flavour> of the same version, both required.
//   - RPM kernels (rpm.go, rpmrepo.go, rpmfamily.go): repomd.xml → primary
//     (its checksum checked) → the image package and the modules packages
//     of the same build (sha256 from primary), each package's OpenPGP
//     signature verified against the key before anything is extracted;
//     payloads read with github.com/sassoftware/go-rpmutils.
//   - Other sources (spec.go): oci (an image pulled by platform, cached by
//     manifest digest), ubuntu-mainline (debs verified against the
//     directory's CHECKSUMS), deb (by URL with a required SHA-256, or local
//     files), file (a kernel left by make) and build (make from a source
//     tree, with the fragments of config/). They all end in the same
//     kernels/<key>/ layout and Kernel record; Origin.Files lists their
//     inputs with SHA-256, which a LockFile pins (lock.go).
//   - Every kernels/<key>/ is sealed (seal.go): each file's size, time and
//     SHA-256 recorded when it is made, checked before each use (the hash
//     only for a file whose time changed). A damaged directory (ErrCacheDamaged)
//     is cached again from its download; a Debian resolution must name the
//     release and arch of the kernel cached under its SHA-256, else the
//     mirror is read again (and an Offline resolve fails).
//   - Files the user names (file:, deb: files, build: fragments) are read
//     only if regular, within bounds, and under ctx (internal/inputfile); a
//     device, FIFO or oversized file is ErrBadInput before it is read.
//   - A download that cannot be written (a full disk) is an error naming the
//     cache, never ErrUnreachable.
//   - The lock file (lock.go) lives here whole: its format, LoadLock,
//     Lock (resolve a matrix's kernels) and resolving to a pin.
//   - A warm Resolve reads two small JSON files, stats the kernel's files and
//     touches no network; Options.Offline never does.
//   - Inspect identifies a kernel image by its contents, never by its name;
//     Describe reports on a resolved kernel (kernels inspect), and the one
//     .config parser is kernels/kconfig.
//   - FetchPackages (debpackages.go) fetches Debian packages that are not
//     kernels (the workload's servers) through the same chain: signed
//     InRelease, Packages, each .deb's SHA-256; Depends are followed into
//     Section: libs packages only; the set is unpacked whole (symlinks
//     kept) into packages/<key>/root with packages.json written last.
//   - Cache.Prune removes what a matrix does not use, and temporaries whose
//     lock no live process holds.
package kernels
