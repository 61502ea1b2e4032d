package report

import (
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// grid is the check × target view of a run shared by the HTML page and the
// GitHub summary. A cell holds the record of that check on that target.
type grid struct {
	Targets []results.Target
	Checks  []string
	cells   map[results.Target]map[string]*results.Record
}

func newGrid(recs []results.Record) grid {
	g := grid{Targets: targets(recs), Checks: checks(recs), cells: map[results.Target]map[string]*results.Record{}}
	for i := range recs {
		r := &recs[i]
		t := results.TargetOf(*r)
		if g.cells[t] == nil {
			g.cells[t] = map[string]*results.Record{}
		}
		// Two records for one cell should not happen; show the worse.
		if old := g.cells[t][r.Check]; old == nil || severity(r.Status) > severity(old.Status) {
			g.cells[t][r.Check] = r
		}
	}
	return g
}

func (g grid) cell(t results.Target, check string) *results.Record { return g.cells[t][check] }

// severity orders statuses from best to worst.
func severity(s protocol.Status) int {
	switch s {
	case protocol.StatusPass:
		return 0
	case protocol.StatusSkip:
		return 1
	case protocol.StatusFail:
		return 2
	case protocol.StatusError:
		return 3
	}
	return 4 // unknown: treat as worse than anything known
}

// counts tallies records by status.
func counts(recs []results.Record) map[protocol.Status]int {
	n := map[protocol.Status]int{}
	for _, r := range recs {
		n[r.Status]++
	}
	return n
}

// problems returns the records that failed or errored, in grid order.
func problems(recs []results.Record) []results.Record {
	var out []results.Record
	for _, t := range targets(recs) {
		for _, r := range sortedRecords(recs, t) {
			if r.Status == protocol.StatusFail || r.Status == protocol.StatusError {
				out = append(out, r)
			}
		}
	}
	return out
}
