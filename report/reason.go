package report

import (
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// reasonText is a record's reason for people: the code, its detail, what
// it means and what to do (protocol.Reasons, docs/reasons.md).
func reasonText(r results.Record) string {
	code := r.ReasonCode()
	if code == "" {
		return "none"
	}
	s := string(code)
	if r.ReasonDetail != "" {
		s += " (" + r.ReasonDetail + ")"
	}
	if ri, ok := code.Info(); ok {
		s += ": " + ri.Meaning + "; what to do: " + ri.Action
	}
	return s
}

// reasonTitle is what a code means, for a tooltip.
func reasonTitle(code protocol.Reason) string {
	if ri, ok := code.Info(); ok {
		return ri.Meaning + " — " + ri.Action
	}
	return ""
}
