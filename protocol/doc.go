// Package protocol holds the messages exchanged between the host controller
// and the guest agent over the virtio-serial port, and their framing.
//
// Framing is one JSON object per line ("JSON lines"). On a kernel with no
// virtio console the same lines travel over the serial console, each as one
// frame line among the kernel's text (consoleframe.go): a prefix, the
// length, a CRC-32 and the base64 of the line, so that text is never taken
// for a message and a frame cut by text is refused. Every message carries
// the protocol version; a reader rejects a line longer than MaxMessageSize,
// a version it does not speak, an unknown type, or a message whose payload
// does not match its type. The host treats everything it reads as untrusted:
// the Decoder bounds and validates, and callers must never use guest-supplied
// strings as paths or shell words.
//
// The exchange is:
//
//	guest → host  ready        (agent is up, port open)
//	host  → guest plan         (the checks to run, with parameters and timeouts;
//	                            the host's clock and entropy; the files to come)
//	host  → guest file         (the plan's files, in bounded chunks, in order)
//	guest → host  prepared     (clock set, random pool reseeded, files verified)
//	guest → host  check-start  (one per check)
//	guest → host  log          (any number, informational)
//	guest → host  output       (any number: what a program run by the test
//	                            check writes, as it writes it, in read order)
//	guest → host  result       (one per check)
//	guest → host  done         (the plan finished, with the number of results sent;
//	                            a missing done is an error, and so is anything after it)
//	host  → guest bye          (host has everything; the guest powers off)
//
// Result, check-start and artifact names are paths of [A-Za-z0-9._-] segments
// (ValidCheckName, ValidArtifactName): they cannot carry a newline or an
// escape sequence into the host's tables and terminals.
//
// A VM restored from a snapshot taken at ready starts at the plan: the
// host already has the ready message, kept with the snapshot, and the
// agent, whose clock stood still and whose random pool is the snapshot's,
// takes the host's time and entropy before anything else (HostState). A
// plan with More may be followed, after done, by another plan instead of
// bye (repro --watch).
//
// The package also holds the table of checks that both sides register from
// (check.go, and one file per check: btf.go, workload.go, …): each check's
// name, the guest program that runs it, its parameters' type with their
// defaults as data and their validation. The host validates matrix.yaml's
// parameters with the same Validate the guest runs, so that bad parameters
// stop a run before any VM boots. guest.go holds the paths and kernel
// arguments both sides agree on.
package protocol
