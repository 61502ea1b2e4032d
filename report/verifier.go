package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// VerifierRow is one program's verification on one kernel × arch: the
// figures of its verifier record (protocol.VerifierDetails).
type VerifierRow struct {
	Target  results.Target
	Program string // OBJECT/PROGRAM
	Verdict string // the status, and the reason when it is not a pass
	Insns   int    // instructions processed
	Limit   int    // the kernel's limit of processed instructions
	States  int    // total states
	Peak    int    // peak states
	Stack   int    // stack depth, frames added up
	Size    int    // instructions in the object
	TimeUS  int64  // verification time
	// Base is the kernel this program's instructions processed are
	// compared with across the run's matrix: the first kernel (in the
	// kernels' natural order) where it has any, on the same arch. Growth is
	// their change (0.2 for 20% more); both are zero values when the
	// program has no figures to compare.
	Base   string
	Growth float64
}

// HasGrowth reports whether the row has a figure compared with its Base.
func (r VerifierRow) HasGrowth() bool { return r.Base != "" }

// LimitPercent is the share of the kernel's instruction limit the program
// used.
func (r VerifierRow) LimitPercent() float64 {
	limit := r.Limit
	if limit <= 0 {
		limit = DefaultInsnsLimit // a record written before insns_limit
	}
	return float64(r.Insns) * 100 / float64(limit)
}

// DefaultInsnsLimit is the kernel's limit of processed instructions since
// 5.2 (BPF_COMPLEXITY_LIMIT_INSNS), for records that do not say it.
const DefaultInsnsLimit = 1_000_000

// VerifierRows reads the programs' figures from a run's verifier records,
// in program then kernel order. It is an error when the run has none.
func VerifierRows(recs []results.Record) ([]VerifierRow, error) {
	var rows []VerifierRow
	for _, r := range recs {
		if !strings.HasPrefix(r.Check, "verifier/") || len(r.Details) == 0 {
			continue
		}
		var d protocol.VerifierDetails
		if err := json.Unmarshal(r.Details, &d); err != nil || d.Program == "" {
			continue // the object's own record
		}
		verdict := string(r.Status)
		if code := r.ReasonCode(); code != "" && r.Status != protocol.StatusPass {
			verdict += " " + string(code)
		}
		rows = append(rows, VerifierRow{Target: results.TargetOf(r), Program: d.Object + "/" + d.Program, Verdict: verdict,
			Insns: d.InsnsProcessed, Limit: d.InsnsLimit, States: d.States, Peak: d.PeakStates, Stack: d.StackDepth,
			Size: d.Instructions, TimeUS: d.VerificationTimeNS / 1000})
	}
	if len(rows) == 0 {
		return nil, errors.New("no verifier results")
	}
	sortVerifier(rows, "program")
	acrossKernels(rows)
	return rows, nil
}

// acrossKernels sets each row's Base and Growth: its instructions
// processed against the same program's on the first kernel of its arch
// that processed any. rows are in program, then kernel order.
func acrossKernels(rows []VerifierRow) {
	type key struct{ program, arch string }
	base := map[key]VerifierRow{}
	for _, r := range rows {
		k := key{r.Program, r.Target.Arch}
		if _, ok := base[k]; !ok && r.Insns > 0 {
			base[k] = r
		}
	}
	for i, r := range rows {
		b, ok := base[key{r.Program, r.Target.Arch}]
		if !ok || r.Insns == 0 {
			continue
		}
		rows[i].Base, rows[i].Growth = b.Target.Kernel, change(float64(b.Insns), float64(r.Insns))
	}
}

// growthText is a row's Growth for a table: "+12.5%", "base" on its base
// kernel, "-" without one.
func growthText(r VerifierRow) string {
	switch {
	case !r.HasGrowth():
		return "-"
	case r.Base == r.Target.Kernel:
		return "base"
	}
	return diffPercent(r.Growth)
}

// VerifierColumns are the columns --sort takes: numbers sort largest first.
var VerifierColumns = []string{"program", "target", "verdict", "insns", "limit", "growth", "states", "peak", "stack", "size", "time"}

func verifierKey(r VerifierRow, col string) float64 {
	switch col {
	case "insns":
		return float64(r.Insns)
	case "limit":
		return r.LimitPercent()
	case "growth":
		if !r.HasGrowth() {
			return math.Inf(-1)
		}
		return r.Growth
	case "states":
		return float64(r.States)
	case "peak":
		return float64(r.Peak)
	case "stack":
		return float64(r.Stack)
	case "size":
		return float64(r.Size)
	case "time":
		return float64(r.TimeUS)
	}
	return 0
}

// sortVerifier sorts rows by a column of VerifierColumns, then by program
// and target.
func sortVerifier(rows []VerifierRow, col string) {
	slices.SortStableFunc(rows, func(a, b VerifierRow) int { return verifierCmp(a, b, col) })
}

func verifierCmp(a, b VerifierRow, col string) int {
	{
		var c int
		switch col {
		case "program":
		case "target":
			c = cmp.Or(naturalCompare(a.Target.Kernel, b.Target.Kernel), strings.Compare(a.Target.Arch, b.Target.Arch))
		case "verdict":
			c = strings.Compare(a.Verdict, b.Verdict)
		default:
			c = cmp.Compare(verifierKey(b, col), verifierKey(a, col))
		}
		return cmp.Or(c, naturalCompare(a.Program, b.Program), naturalCompare(a.Target.Kernel, b.Target.Kernel),
			strings.Compare(a.Target.Arch, b.Target.Arch))
	}
}

// CheckVerifierColumn says whether col is a column of VerifierColumns.
func CheckVerifierColumn(col string) error {
	if !slices.Contains(VerifierColumns, col) {
		return fmt.Errorf("unknown column %q: expected one of %s", col, strings.Join(VerifierColumns, ", "))
	}
	return nil
}

// WriteVerifierTable prints the rows veristat-style: one line per program
// × kernel, with its verdict, instructions processed, share of the
// kernel's limit, growth from the program's base kernel (GROWTH: the
// first kernel of the matrix that processed it), total and peak states,
// stack depth, size and time, sorted by col. A row whose instructions
// grew by more than growth (a fraction, 0 for no budget) from its base
// is marked OVER; it returns how many are.
func WriteVerifierTable(w io.Writer, rows []VerifierRow, col string, growth float64) (int, error) {
	rows = slices.Clone(rows)
	sortVerifier(rows, col)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tTARGET\tVERDICT\tINSNS\tLIMIT%\tGROWTH\tSTATES\tPEAK\tSTACK\tSIZE\tTIME(us)\t\t")
	over := 0
	for _, r := range rows {
		mark := ""
		if growth > 0 && r.HasGrowth() && r.Growth > growth {
			mark = "OVER"
			over++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Program, r.Target, r.Verdict, r.Insns, r.LimitPercent(),
			growthText(r), r.States, r.Peak, r.Stack, r.Size, r.TimeUS, mark)
	}
	return over, tw.Flush()
}

// VerifierChange is one program × kernel in two runs.
type VerifierChange struct {
	Old, New VerifierRow
}

// Growth is the relative change of instructions processed: 0.2 for 20%
// more; +Inf from none.
func (c VerifierChange) Growth() float64 { return change(float64(c.Old.Insns), float64(c.New.Insns)) }

func change(old, new float64) float64 {
	if old == 0 {
		if new == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (new - old) / old
}

// CompareVerifier lines up the programs × kernels of two runs; those in
// only one run are left out.
func CompareVerifier(old, new []VerifierRow) []VerifierChange {
	type key struct {
		t results.Target
		p string
	}
	byKey := map[key]VerifierRow{}
	for _, r := range old {
		byKey[key{r.Target, r.Program}] = r
	}
	var out []VerifierChange
	for _, r := range new {
		if o, ok := byKey[key{r.Target, r.Program}]; ok {
			out = append(out, VerifierChange{Old: o, New: r})
		}
	}
	return out
}

// WriteVerifierCompare prints two runs side by side, veristat's compare
// mode: each figure old, new and its change in percent, sorted by col of
// the new run. A change whose instructions grew by more than growth (a
// fraction, 0 for no budget) is marked OVER; it returns how many are.
func WriteVerifierCompare(w io.Writer, changes []VerifierChange, col string, growth float64) (int, error) {
	changes = slices.Clone(changes)
	slices.SortStableFunc(changes, func(a, b VerifierChange) int { return verifierCmp(a.New, b.New, col) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tTARGET\tVERDICT (A)\tVERDICT (B)\tINSNS (A)\tINSNS (B)\tINSNS (DIFF)\tSTATES (A)\tSTATES (B)\tSTATES (DIFF)\tPEAK (A)\tPEAK (B)\tSTACK (A)\tSTACK (B)\tLIMIT% (B)\t\t")
	over := 0
	for _, c := range changes {
		mark := ""
		if growth > 0 && c.Growth() > growth {
			mark = "OVER"
			over++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.1f\t%s\t\n", c.New.Program, c.New.Target, c.Old.Verdict, c.New.Verdict,
			c.Old.Insns, c.New.Insns, diffPercent(c.Growth()), c.Old.States, c.New.States, diffPercent(change(float64(c.Old.States), float64(c.New.States))),
			c.Old.Peak, c.New.Peak, c.Old.Stack, c.New.Stack, c.New.LimitPercent(), mark)
	}
	return over, tw.Flush()
}

func diffPercent(f float64) string {
	if math.IsInf(f, 0) {
		return "new"
	}
	return fmt.Sprintf("%+.1f%%", f*100)
}
