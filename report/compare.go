package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// Direction says which way a figure is good.
type Direction int

const (
	Either         Direction = iota // a count (types, insns_processed): a move is reported, never a regression
	LowerIsBetter                   // a cost: latency, CPU, memory, time
	HigherIsBetter                  // a rate: throughput, requests observed
)

func (d Direction) String() string {
	switch d {
	case LowerIsBetter:
		return "lower is better"
	case HigherIsBetter:
		return "higher is better"
	}
	return "either way"
}

// Directions maps the last element of a figure's name (details.workload.p99_ms
// → p99_ms) to its direction. Only these figures can make a comparison fail,
// and they are always compared; every other number found in details is
// reported when it moves. The list is short on purpose: a generic name such
// as "errors" means different things in different checks.
var Directions = map[string]Direction{
	"duration_ms":         LowerIsBetter, // the record's, with --timings
	"boot_ms":             LowerIsBetter, // the record's, with --timings
	"p50_ms":              LowerIsBetter,
	"p99_ms":              LowerIsBetter,
	"p99_latency_ms":      LowerIsBetter,
	"latency_ms":          LowerIsBetter,
	"startup_ms":          LowerIsBetter,
	"overhead_percent":    LowerIsBetter,
	"cpu_percent":         LowerIsBetter,
	"memory_bytes":        LowerIsBetter,
	"rss_bytes":           LowerIsBetter,
	"throughput":          HigherIsBetter,
	"requests_per_second": HigherIsBetter,
	"ops_per_second":      HigherIsBetter,
}

// timingSuffixes mark figures of details that measure time (the verifier's
// verification_time_ns): noisy, so compared only with --timings, unless
// Directions names them.
var timingSuffixes = []string{"_ns", "_us", "_ms", "_seconds", "_secs", "time", "duration", "elapsed"}

func isTiming(name string) bool {
	last := lastElement(name)
	if _, ok := Directions[last]; ok {
		return false
	}
	for _, s := range timingSuffixes {
		if strings.HasSuffix(last, s) {
			return true
		}
	}
	return false
}

// CompareOptions tune Compare.
type CompareOptions struct {
	Threshold float64 // relative move reported, as a fraction: 0.05 for 5%
	Timings   bool    // also compare duration_ms and boot_ms of records (noisy)
}

// DefaultThreshold is the relative move reported unless told otherwise.
const DefaultThreshold = 0.05

// ParseThreshold reads "5%", "5" (both percent) or "0.5%".
func ParseThreshold(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("threshold %q: want a percentage such as 5%%", s)
	}
	return v / 100, nil
}

// Key names a record across runs.
type Key struct {
	results.Target
	Check string
}

func (k Key) String() string { return k.Target.String() + " " + k.Check }

// VerdictChange is a record whose status changed, or that failed in both
// runs for different reasons.
type VerdictChange struct {
	Key
	Old, New protocol.Status
	// OldReason and NewReason are the records' reasons (Record.ReasonCode);
	// "" for a pass.
	OldReason, NewReason protocol.Reason
	Message              string // the new record's
	Regression           bool
}

// FigureChange is a number that moved beyond the threshold.
type FigureChange struct {
	Key
	Name       string // details.types, duration_ms
	Old, New   float64
	Direction  Direction
	Regression bool
}

// Change is New relative to Old: +0.1 for 10% up. Infinite when Old is 0.
func (f FigureChange) Change() float64 {
	if f.Old == 0 {
		return math.Inf(int(math.Copysign(1, f.New)))
	}
	return (f.New - f.Old) / math.Abs(f.Old)
}

// KernelChange is a target whose kernel is not the same build.
type KernelChange struct {
	results.Target
	Old, New string
}

// Comparison is what changed from one run to another.
type Comparison struct {
	Old, New  results.RunInfo
	Threshold float64
	Verdicts  []VerdictChange
	Added     []Key
	Removed   []Key
	Figures   []FigureChange
	Kernels   []KernelChange
	// OldIncomplete and NewIncomplete are the runs' IncompleteNote: "" for a
	// run that finished. An unfinished new run is a regression.
	OldIncomplete, NewIncomplete string
}

// Regressions counts the verdicts and figures that got worse, and an
// unfinished new run.
func (c Comparison) Regressions() int {
	n := 0
	if c.NewIncomplete != "" {
		n++
	}
	for _, v := range c.Verdicts {
		if v.Regression {
			n++
		}
	}
	for _, f := range c.Figures {
		if f.Regression {
			n++
		}
	}
	return n
}

// Compare lines up the records of two runs by kernel, arch and check.
//
// A verdict regresses when it gets worse in the order pass < skip < fail <
// error (a check that passed and is now skipped no longer proves anything).
// A figure regresses when it moved beyond the threshold the bad way for its
// Direction; figures of direction Either are reported only.
//
// A VM that ended cleanly has no record of its own (check results.VMCheck):
// where one run has such a record for a VM the other ran, the other's counts
// as a pass, so a VM that newly died is a regression. An unfinished run is
// noted (Comparison.OldIncomplete, NewIncomplete); the VMs it lacks show as
// removed or added.
func Compare(old, new results.Report, opts CompareOptions) Comparison {
	c := Comparison{Old: old.Run, New: new.Run, Threshold: opts.Threshold,
		OldIncomplete: IncompleteNote(old), NewIncomplete: IncompleteNote(new)}
	oldRecs, newRecs := byKey(old.Results), byKey(new.Results)
	impliedVMPass(oldRecs, newRecs)
	impliedVMPass(newRecs, oldRecs)
	kernelSeen := map[results.Target]bool{}
	for _, k := range sortedKeys(newRecs) {
		nr := newRecs[k]
		or, ok := oldRecs[k]
		if !ok {
			c.Added = append(c.Added, k)
			continue
		}
		if !kernelSeen[k.Target] && or.KernelRelease+sha(or) != nr.KernelRelease+sha(nr) {
			c.Kernels = append(c.Kernels, KernelChange{k.Target, kernelID(or), kernelID(nr)})
		}
		kernelSeen[k.Target] = true
		oldReason, newReason := failReason(or), failReason(nr)
		if or.Status != nr.Status || oldReason != newReason {
			c.Verdicts = append(c.Verdicts, VerdictChange{Key: k, Old: or.Status, New: nr.Status,
				OldReason: oldReason, NewReason: newReason,
				Message: text.OneLine(nr.Message, 200), Regression: severity(nr.Status) > severity(or.Status)})
		}
		c.Figures = append(c.Figures, compareFigures(k, or, nr, opts)...)
	}
	for _, k := range sortedKeys(oldRecs) {
		if _, ok := newRecs[k]; !ok {
			c.Removed = append(c.Removed, k)
		}
	}
	return c
}

// failReason is the reason of a record that is not a pass; a pass's reason
// (a program rejected as expected) is not compared.
func failReason(r results.Record) protocol.Reason {
	if r.Status == protocol.StatusPass {
		return ""
	}
	return r.ReasonCode()
}

// impliedVMPass adds to m a passing VM record for each VM record of other
// whose target m ran without one: that VM ended cleanly.
func impliedVMPass(m, other map[Key]results.Record) {
	ran := map[results.Target]results.Record{}
	for k, r := range m {
		ran[k.Target] = r
	}
	for k := range other {
		if k.Check != results.VMCheck {
			continue
		}
		if _, ok := m[k]; ok {
			continue
		}
		if r, ok := ran[k.Target]; ok {
			m[k] = results.Record{Kernel: r.Kernel, Arch: r.Arch, KernelRelease: r.KernelRelease, Source: r.Source, Accel: r.Accel,
				Check: results.VMCheck, Status: protocol.StatusPass}
		}
	}
}

func sha(r results.Record) string {
	if r.Source == nil {
		return ""
	}
	return r.Source.SHA256
}

func kernelID(r results.Record) string {
	id := orDefault(r.KernelRelease, "?")
	if s := sha(r); len(s) >= 12 {
		id += " (" + s[:12] + ")"
	}
	return id
}

func byKey(recs []results.Record) map[Key]results.Record {
	m := map[Key]results.Record{}
	for _, r := range recs {
		k := Key{results.TargetOf(r), r.Check}
		// Duplicates should not happen; keep the worse so nothing hides.
		if old, ok := m[k]; !ok || severity(r.Status) > severity(old.Status) {
			m[k] = r
		}
	}
	return m
}

func sortedKeys(m map[Key]results.Record) []Key {
	ks := make([]Key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if c := naturalCompare(a.Kernel, b.Kernel); c != 0 {
			return c < 0
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return naturalCompare(a.Check, b.Check) < 0
	})
	return ks
}

// maxFigures bounds the numbers taken from one record's details.
const maxFigures = 1000

func compareFigures(k Key, or, nr results.Record, opts CompareOptions) []FigureChange {
	oldF, newF := figures(or.Details), figures(nr.Details)
	if opts.Timings {
		oldF["duration_ms"], newF["duration_ms"] = float64(or.DurationMS), float64(nr.DurationMS)
		// A boot and a restore are different measures: not compared.
		if or.BootMS > 0 && nr.BootMS > 0 && or.Boot == nr.Boot {
			oldF["boot_ms"], newF["boot_ms"] = float64(or.BootMS), float64(nr.BootMS)
		}
	}
	names := make([]string, 0, len(newF))
	for name := range newF {
		if !opts.Timings && isTiming(name) {
			continue
		}
		if _, ok := oldF[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []FigureChange
	for _, name := range names {
		f := FigureChange{Key: k, Name: name, Old: oldF[name], New: newF[name], Direction: direction(name)}
		if f.Old == f.New || math.Abs(f.Change()) <= opts.Threshold {
			continue
		}
		switch f.Direction {
		case LowerIsBetter:
			f.Regression = f.New > f.Old
		case HigherIsBetter:
			f.Regression = f.New < f.Old
		}
		out = append(out, f)
	}
	return out
}

func direction(name string) Direction { return Directions[lastElement(name)] }

// lastElement is the key a figure's name ends with: p99_ms for
// details.workload.http.p99_ms, hist for details.hist[2].
func lastElement(name string) string {
	name = strings.TrimRight(name, "]0123456789[")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// figures flattens the numbers of a details object: {"a": {"b": [1, 2]}}
// gives details.a.b[0] and details.a.b[1].
func figures(details json.RawMessage) map[string]float64 {
	out := map[string]float64{}
	if len(details) == 0 {
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(details))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return out
	}
	flatten("details", v, out)
	return out
}

func flatten(prefix string, v any, out map[string]float64) {
	if len(out) >= maxFigures {
		return
	}
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			out[prefix] = f
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			flatten(prefix+"."+k, v[k], out)
		}
	case []any:
		for i, e := range v {
			flatten(prefix+"["+strconv.Itoa(i)+"]", e, out)
		}
	}
}

// Write prints the comparison for people, regressions marked.
func (c Comparison) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "old: %s  new: %s  threshold: %s\n", orDefault(c.Old.ID, "?"), orDefault(c.New.ID, "?"), percent(c.Threshold))
	if c.OldIncomplete != "" {
		fmt.Fprintf(&b, "\nold run incomplete: %s\n", c.OldIncomplete)
	}
	if c.NewIncomplete != "" {
		fmt.Fprintf(&b, "\nnew run incomplete: %s%s\n", c.NewIncomplete, mark(true))
	}
	if len(c.Kernels) > 0 {
		b.WriteString("\nkernels changed:\n")
		for _, k := range c.Kernels {
			fmt.Fprintf(&b, "  %s: %s → %s\n", k.Target, k.Old, k.New)
		}
	}
	if len(c.Verdicts) > 0 {
		b.WriteString("\nverdicts:\n")
		for _, v := range c.Verdicts {
			fmt.Fprintf(&b, "  %s: %s → %s%s", v.Key, withReason(v.Old, v.OldReason), withReason(v.New, v.NewReason), mark(v.Regression))
			if v.Message != "" && v.New != protocol.StatusPass {
				fmt.Fprintf(&b, "  (%s)", v.Message)
			}
			b.WriteString("\n")
		}
	}
	for _, l := range []struct {
		title string
		keys  []Key
	}{{"added", c.Added}, {"removed", c.Removed}} {
		if len(l.keys) > 0 {
			fmt.Fprintf(&b, "\n%s:\n", l.title)
			for _, k := range l.keys {
				fmt.Fprintf(&b, "  %s\n", k)
			}
		}
	}
	if len(c.Figures) > 0 {
		fmt.Fprintf(&b, "\nfigures moved more than %s:\n", percent(c.Threshold))
		for _, f := range c.Figures {
			fmt.Fprintf(&b, "  %s %s: %s → %s (%s, %s)%s\n", f.Key, f.Name, num(f.Old), num(f.New),
				signedPercent(f.Change()), f.Direction, mark(f.Regression))
		}
	}
	if len(c.Kernels)+len(c.Verdicts)+len(c.Added)+len(c.Removed)+len(c.Figures) == 0 && c.OldIncomplete+c.NewIncomplete == "" {
		b.WriteString("\nno changes\n")
	}
	fmt.Fprintf(&b, "\nregressions: %d\n", c.Regressions())
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	return nil
}

func mark(regression bool) string {
	if regression {
		return "  REGRESSION"
	}
	return ""
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func percent(f float64) string { return strconv.FormatFloat(f*100, 'g', 4, 64) + "%" }

func signedPercent(f float64) string {
	if math.IsInf(f, 0) {
		return "from 0"
	}
	s := strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
	if f > 0 {
		s = "+" + s
	}
	return s
}

// withReason is "fail TOO_COMPLEX", or the status alone.
func withReason(s protocol.Status, r protocol.Reason) string {
	if r == "" {
		return string(s)
	}
	return string(s) + " " + string(r)
}
