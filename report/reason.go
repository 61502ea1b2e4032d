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
	if h := HintText(r); h != "" {
		return s + "; " + h
	}
	if ri, ok := code.Info(); ok {
		s += ": " + ri.Meaning + "; what to do: " + ri.Action
	}
	return s
}

// HintText labels a reason read from the program's own output as the hint
// it is, with what to do: "hint, read from the program's output: <what
// to do>"; "" for any other record.
func HintText(r results.Record) string {
	if r.ReasonFrom != results.ReasonFromOutput || r.Reason == "" {
		return ""
	}
	h := "hint, read from the program's output"
	if r.Hint != "" {
		h += ": " + r.Hint
	}
	return h
}

// reasonTitle is what a code means, for a tooltip.
func reasonTitle(code protocol.Reason) string {
	if ri, ok := code.Info(); ok {
		return ri.Meaning + " — " + ri.Action
	}
	return ""
}
