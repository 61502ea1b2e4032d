package vm

import (
	"github.com/vmrunner/vmrunner/internal/matrix"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// VMCheck is the check name of the record a VM gets for itself when its
// conversation with the host did not end with done and a clean power-off. No
// check of a matrix can have this name.
const VMCheck = "vm"

// maxMessage bounds the message of a record.
const maxMessage = 4096

// Records turns one VM's outcome into records: one per result the guest
// sent, an error for each planned check with none, and an error for the VM
// itself when it did not end well, so that a guest that reported pass and
// then died is never a pass. base holds what every record shares.
func Records(t matrix.Target, plan protocol.Plan, base results.Record, out Outcome, elapsed time.Duration) []results.Record {
	recs := make([]results.Record, 0, len(plan.Checks)+1)
	for _, c := range plan.Checks {
		// A check reports under its own name and/or sub-results named
		// "<check>/<...>" (one per verifier program, say), in guest order.
		var mine []protocol.Result
		for _, gr := range out.Results {
			if gr.Check == c.Name || strings.HasPrefix(gr.Check, c.Name+"/") {
				mine = append(mine, gr)
			}
		}
		for _, gr := range mine {
			r := base
			r.Check, r.Status, r.Message, r.DurationMS, r.Details = gr.Check, gr.Status, text.Truncate(gr.Message, maxMessage), gr.DurationMS, gr.Details
			r.Reason, r.ReasonDetail = gr.Reason, gr.ReasonDetail
			if gr.Status == protocol.StatusError {
				r.ErrorKind = guestErrorKind(gr.ErrorKind)
			}
			for _, a := range out.Artifacts[gr.Check] {
				r.Artifacts = append(r.Artifacts, t.Dirname()+"/"+a)
			}
			recs = append(recs, r)
		}
		if len(mine) == 0 {
			r := base
			r.Check = c.Name
			r.Status, r.ErrorKind = protocol.StatusError, out.FailKind
			if out.Err != nil {
				r.Message = text.Truncate(out.Err.Error(), maxMessage)
			} else {
				r.ErrorKind, r.Message = results.KindAgent, "the guest agent reported no result for this check"
			}
			r.DurationMS = elapsed.Milliseconds()
			recs = append(recs, r)
		}
	}
	if out.FailKind != "" {
		r := base
		r.Check, r.Status, r.ErrorKind = VMCheck, protocol.StatusError, out.FailKind
		if out.Err != nil {
			r.Message = text.Truncate(out.Err.Error(), maxMessage)
		}
		r.DurationMS = elapsed.Milliseconds()
		recs = append(recs, r)
	}
	return recs
}

// guestErrorKind is the kind of a guest's error result: the one kind a guest
// may name (protocol.ErrorKindLoad), else KindCheck.
func guestErrorKind(kind string) results.ErrorKind {
	if kind == protocol.ErrorKindLoad {
		return results.KindLoad
	}
	return results.KindCheck
}
