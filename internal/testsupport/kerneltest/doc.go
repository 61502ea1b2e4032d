// Package kerneltest builds real kernel fixtures for tests of the kernel
// sources: container images, .debs and an Ubuntu-mainline-like HTTP tree,
// all made from a real Debian kernel of the user cache, served by
// in-process servers. Nothing here is a stand-in: the images and packages
// hold the real kernel, which the tests boot.
//
// Under make test-unit (VMRUNNER_SKIP_INTEGRATION set) the kernel comes from
// the cache alone and a test whose kernel is not cached is skipped, saying
// how to fill the cache; otherwise a cold cache downloads it. The package
// sits under internal/ because it uses both kernels and initramfs (the
// module closure a fixture must carry): nothing under kernels/ imports
// initramfs.
package kerneltest
