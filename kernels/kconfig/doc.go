// Package kconfig reads a kernel's .config. It is the one parser of the tree:
// the host uses it to inspect cached kernels and to check that a build's
// config fragments stuck, the guest agent to report the running kernel's
// options. It imports only the standard library, so that the guest agent
// stays small.
//
// Options are named without their CONFIG_ prefix. "# CONFIG_X is not set"
// reads as "n", values are kept as written (quotes included), and an option
// that appears twice keeps its last value, as Kconfig does.
package kconfig
