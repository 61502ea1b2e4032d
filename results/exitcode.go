package results

import "github.com/vmrunner/vmrunner/protocol"

// Exit codes of `vmrunner run`, documented in docs/results.md and --help.
const (
	ExitOK          = 0   // every check passed (or was skipped)
	ExitFail        = 1   // at least one check failed
	ExitBadInput    = 2   // the matrix, a flag or a kernel source is wrong
	ExitInfra       = 3   // boot failure, timeout, panic, download or QEMU trouble
	ExitInterrupted = 130 // SIGINT/SIGTERM
)

// ExitCode folds records into the process exit code. Bad input outranks
// infrastructure, which outranks check failures.
func ExitCode(recs []Record) int {
	code := ExitOK
	for _, r := range recs {
		c := ExitOK
		switch {
		case r.ErrorKind == KindInterrupted:
			c = ExitInterrupted
		case r.ErrorKind == KindBadInput:
			c = ExitBadInput
		case r.ErrorKind == KindLoad:
			c = ExitFail // the object's or the matrix's problem, not the machinery's
		case r.Status == protocol.StatusError:
			c = ExitInfra
		case r.Status == protocol.StatusFail:
			c = ExitFail
		}
		code = WorseExit(code, c)
	}
	return code
}

// WorseExit returns the exit code of a and b that outranks the other, as
// ExitCode folds them.
func WorseExit(a, b int) int {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func rank(code int) int {
	switch code {
	case ExitOK:
		return 0
	case ExitFail:
		return 1
	case ExitInfra:
		return 2
	case ExitBadInput:
		return 3
	case ExitInterrupted:
		return 4
	}
	return 2 // an exit code vmrunner does not write: as infrastructure
}
