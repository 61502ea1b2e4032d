// Package initramfs builds the initramfs a guest VM boots with: the guest
// agent as /init, the kernel modules it needs to reach the host, and the
// kernel config, packed as one uncompressed newc cpio archive.
//
// # Layout
//
// The guest agent relies on this layout; LayoutVersion changes whenever it
// does (and with it every cache key):
//
//	/init                                 the guest agent, mode 0755
//	/dev/console                          character device 5:1, so the kernel
//	                                      gives /init a console before devtmpfs
//	/dev /proc /sys /tmp /run             empty mount points
//	/lib/modules/<release>/<rel>.ko       each module of the closure, decompressed,
//	                                      at its path relative to the kernel's
//	                                      lib/modules/<release> with the
//	                                      compression suffix removed
//	/etc/vmrunner/modules                 the load order: one absolute path per
//	                                      line, dependencies first
//	/boot/config-<release>                the kernel config, when known
//
// Built-in modules (listed in modules.builtin) need no file and are left out
// of the archive and of the load order.
//
// # Modules
//
// Debian kernel packages ship no modules.dep, so Closure reads each module's
// dependencies from the depends= entry of its .modinfo ELF section. A wanted
// module that the kernel has neither as a file nor built in is skipped: it
// may simply not exist in that kernel version. A dependency that cannot be
// found is an error, since the module that needs it would fail to load.
//
// # Cache
//
// Build caches archives under <CacheDir>/initramfs/, named by the SHA-256 of
// everything that goes into them (agent, modules, config, release and
// LayoutVersion). Archives are written to a temporary file and renamed into
// place under a file lock, so concurrent builders never see a partial
// archive, and building the same inputs twice yields the same bytes.
// Archives are sealed with their SHA-256, size and modification time, and
// rebuilt when damaged: as in the kernel cache, a check hashes an archive
// only when its time is not the recorded one (or is within a second of the
// seal, too close to trust), so an archive patched with its size and time
// put back is not caught. The inputs are read and hashed on every Build:
// a changed input always gives another archive. Archives are
// the user's alone (0600 in a 0700 directory), since they hold the
// matrix's files. Extra files are regular files of at most MaxFileSize,
// MaxExtraSize together, streamed and checked not to change while written
// (ErrBadFile otherwise); one file per guest path, the later winning.
// Prune removes temporaries a killed builder left (their lock is free), and
// with all every archive.
package initramfs
