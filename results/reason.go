package results

import "github.com/vmrunner/vmrunner/protocol"

// kindReasons are the reasons of the error kinds: the VM-level ones.
var kindReasons = map[ErrorKind]protocol.Reason{
	KindBadInput:    protocol.ReasonBadInput,
	KindKernel:      protocol.ReasonKernelFetch,
	KindInitramfs:   protocol.ReasonInitramfs,
	KindQEMU:        protocol.ReasonQEMU,
	KindBootTimeout: protocol.ReasonBootTimeout,
	KindTimeout:     protocol.ReasonTimeout,
	KindPanic:       protocol.ReasonKernelPanic,
	KindAgent:       protocol.ReasonAgent,
	KindProtocol:    protocol.ReasonProtocol,
	KindInterrupted: protocol.ReasonInterrupted,
	KindCheck:       protocol.ReasonCheckError,
	KindIncomplete:  protocol.ReasonIncomplete,
	KindLoad:        protocol.ReasonLoader,
	KindMissing:     protocol.ReasonMissingShard,
}

// checkReasons are the reasons of a fail that came without one, by the
// check's name (its part before the first '/').
var checkReasons = map[string]protocol.Reason{
	"btf":      protocol.ReasonMissingBTF,
	"features": protocol.ReasonFeatureMissing,
	"workload": protocol.ReasonWorkload,
	"beyla":    protocol.ReasonWorkload,
	"test":     protocol.ReasonProgramFailed,
	"exec":     protocol.ReasonProgramFailed,
}

// ReasonCode is why r is not a pass: its own Reason when the guest gave one,
// else the reason of its error kind (a VM-level one: KERNEL_PANIC, TIMEOUT,
// AGENT ...), else its check's reason for a fail, CHECK_FAILED for any
// other fail and SKIPPED for a skip. A pass has none, unless the guest gave
// one (a program rejected as expected).
//
// A VM-level error kind wins over the guest's reason: a check whose VM
// panicked is about the panic.
func (r Record) ReasonCode() protocol.Reason {
	if r.Status == protocol.StatusError {
		if k, ok := kindReasons[r.ErrorKind]; ok && r.ErrorKind != KindLoad && r.ErrorKind != KindCheck {
			return k
		}
	}
	if r.Reason != "" {
		return r.Reason
	}
	switch r.Status {
	case protocol.StatusPass:
		return ""
	case protocol.StatusSkip:
		return protocol.ReasonSkipped
	case protocol.StatusError:
		if k, ok := kindReasons[r.ErrorKind]; ok {
			return k
		}
		return protocol.ReasonCheckError
	}
	check := r.Check
	for i := 0; i < len(check); i++ {
		if check[i] == '/' {
			check = check[:i]
			break
		}
	}
	if c, ok := checkReasons[check]; ok {
		return c
	}
	return protocol.ReasonCheckFailed
}

// WithReason returns r with Reason set to ReasonCode; a VM-level reason
// replaces the guest's, whose detail (and hint) goes with it.
func (r Record) WithReason() Record {
	code := r.ReasonCode()
	if code != r.Reason {
		r.ReasonDetail, r.ReasonFrom, r.Hint = "", "", ""
	}
	r.Reason = code
	return r
}
