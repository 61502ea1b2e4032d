package results

// ErrorKind says why a record has status error. Bad input is the user's to
// fix (exit 2); KindLoad is a BPF object that could not be loaded, the
// input's problem found in the guest (exit 1); an interruption exits 130;
// every other kind exits 3.
type ErrorKind string

// Error kinds, as written in results.json.
const (
	KindBadInput    ErrorKind = "bad-input"
	KindKernel      ErrorKind = "kernel"       // resolving or downloading the kernel failed
	KindInitramfs   ErrorKind = "initramfs"    // building the initramfs failed
	KindQEMU        ErrorKind = "qemu"         // QEMU missing, failed to start, or died
	KindBootTimeout ErrorKind = "boot-timeout" // no agent message in time
	KindTimeout     ErrorKind = "timeout"      // the VM overran its time limit
	KindPanic       ErrorKind = "panic"        // the guest kernel panicked
	KindAgent       ErrorKind = "agent"        // the agent stopped before reporting done
	KindProtocol    ErrorKind = "protocol"     // the guest sent something invalid
	KindInterrupted ErrorKind = "interrupted"  // the run was interrupted
	KindCheck       ErrorKind = "check"        // the check itself could not run (guest-side error)
	// KindIncomplete is never written by a run: readers give it to the VMs
	// an unfinished run planned and has no record of (Report.NotRun).
	KindIncomplete ErrorKind = "incomplete"
	KindLoad       ErrorKind = "load" // a BPF object failed before the verifier ran (protocol.ErrorKindLoad)
	// KindMissing: a merge with --allow-partial had no shard run for the target.
	KindMissing ErrorKind = "missing"
)
