// Package guest is the vmrunner guest agent: PID 1 inside every test VM.
//
// Main prepares the VM (mounts, console, kernel modules listed by the
// initramfs, see package initramfs), opens the virtio-serial port named
// protocol.PortName (or, on a kernel with no virtio console, the serial
// console: channel_linux.go) and speaks the protocol described in package
// protocol:
//
//	ready → (plan) → check-start, result per check → done → (bye)
//
// then powers the VM off. It never returns: an init that exits panics the
// kernel. A fatal error is written to the console and ends in a power-off
// too, so the host sees a missing done, never a false pass.
//
// Every wait is bounded: PortTimeout for the port to appear, PlanTimeout for
// the plan, each check's own timeout (DefaultCheckTimeout when the plan gives
// none) and ByeTimeout for the host's bye. A check that overruns is reported
// as an error and abandoned; a check that panics is reported as an error.
//
// The checks are those of protocol's table (protocol.Checks). Each of the
// agent's own lives in a file named for it (btf.go) that adds it to the
// agent's Registry; the agent relays those of protocol.RunnerWorkload to the
// workload runner (workload_runner.go, package workloadcheck). A check reads
// its parameters with its protocol.Check's Params, defaults filled in and
// validated, returns an Outcome for pass, fail and skip, and an error when
// something unexpected broke, which is reported as status error.
//
// The kernel's BTF is parsed once per agent (kernelbtf.Load, kernelbtf.Cache)
// and shared by the btf check, the features probes that name a kernel
// function and the verifier's loaders, plan after plan: it is the largest
// cost of those checks under emulation, and the kernel does not change
// while the agent runs.
//
// The test check (test.go, program_linux.go) runs a program of the user's
// instead: binds the files the host packed for it (protocol.Bind), starts it
// with its argv as given, as root with every capability but CAP_SYS_PTRACE, no memlock limit
// and lo up, streams its stdout and stderr as output messages as it reads
// them (pump.go, bounded by protocol.TestParams.MaxOutput), stops it after
// a task dump when it outlives its check (protocol.TestStopMargin), and
// reports its exit status as a shell would: 128+N for signal N. The
// program runs in a sandbox (sandbox_linux.go): no CAP_SYS_PTRACE and a
// mount namespace whose /dev has neither the agent's channel nor the
// console, so that it cannot reach the agent's descriptors or memory
// (docs/guest-trust.md).
package guest
