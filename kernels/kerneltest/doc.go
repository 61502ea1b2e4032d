// Package kerneltest builds real kernel fixtures for tests of the kernel
// sources: container images, .debs and an Ubuntu-mainline-like HTTP tree,
// all made from a real Debian kernel of the user cache (resolved with
// kernels.Resolve, so a cold cache downloads it from the Debian mirror),
// served by in-process servers. Nothing here is a stand-in: the images and
// packages hold the real kernel, which the tests boot.
package kerneltest
