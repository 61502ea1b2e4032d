package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/results"
)

// maxNamed bounds the VMs an incompleteness note names (results.json may
// come from anywhere).
const maxNamed = 20

// IncompleteNote says, for a run that did not record its end, why it is
// incomplete and which planned VMs have no results; "" for a finished run.
// Writers put it after "incomplete run: ".
// Every writer of this package shows it; the VMs it names also get an error
// record each (results.Report.NotRun).
func IncompleteNote(rep results.Report) string {
	if !rep.Incomplete() {
		return ""
	}
	s := "results.json says finished: false (vmrunner was killed or crashed, or is still running)"
	switch missing := rep.Missing(); {
	case len(rep.Run.Targets) == 0:
		s += "; it does not list the VMs it planned, so some may be missing"
	case len(missing) == 0:
		s += "; every planned VM has results"
	default:
		names := make([]string, 0, maxNamed)
		for _, t := range missing[:min(len(missing), maxNamed)] {
			names = append(names, t.String())
		}
		if len(missing) > maxNamed {
			names = append(names, fmt.Sprintf("and %d more", len(missing)-maxNamed))
		}
		s += fmt.Sprintf("; no results for %d of %d VMs: %s", len(missing), len(rep.Run.Targets), strings.Join(names, ", "))
	}
	return text.OneLine(s, 4096)
}

// records returns what a writer shows: the run's records and, for an
// unfinished run, an error record for each planned VM it has no record of.
func records(rep results.Report) []results.Record {
	return append(slices.Clip(rep.Results), rep.NotRun()...)
}
