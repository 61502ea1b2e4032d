package report

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// MarkdownOptions tune WriteMarkdown.
type MarkdownOptions struct {
	// Baseline, when set, is the run the pull request is compared with:
	// regressions and complexity changes against it are listed.
	Baseline *Run
	// Threshold is the relative change of a verifier figure reported
	// (DefaultThreshold when 0).
	Threshold float64
	// Limit bounds the document's size in bytes (MarkdownCommentLimit
	// when 0).
	Limit int
}

// MarkdownCommentLimit is GitHub's limit of a comment's characters; a
// step summary may hold 1 MiB. WriteMarkdown fits the smaller one by
// default.
const MarkdownCommentLimit = 65536

// Lines of a failure's log quoted in its <details>.
const markdownLogLines = 15

// WriteMarkdown writes a run as GitHub-flavoured Markdown for a pull
// request or a job summary: the verdict grid (checks × kernels, a failure's
// cell with its reason), the failures counted by reason with what to do,
// the regressions and verifier complexity changes against a baseline, and
// each failure with the last lines of its log folded in <details>. It fits
// opts.Limit by leaving out parts, never by cutting one: first the
// failures' details beyond those that fit, then the grid (replaced by one
// line per kernel), and says what it left out.
func WriteMarkdown(w io.Writer, run Run, opts MarkdownOptions) error {
	if opts.Limit <= 0 {
		opts.Limit = MarkdownCommentLimit
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	recs := records(run.Report)
	head := markdownHead(run, recs)

	grid := markdownGrid(recs, reasonCell)
	byReason := markdownReasons(recs)
	changes := markdownAcross(recs, opts.Threshold)
	if opts.Baseline != nil {
		changes += markdownChanges(*opts.Baseline, run, opts.Threshold)
	}
	var details []string
	for _, r := range problems(recs) {
		details = append(details, markdownFailure(run, r))
	}

	// What must stay, then what fits.
	fixed := len(head) + len(byReason) + len(changes) + 200
	if fixed+len(grid) > opts.Limit {
		grid = markdownTargetLines(recs)
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(grid)
	b.WriteString(byReason)
	b.WriteString(changes)
	if len(details) > 0 {
		b.WriteString("\n### Failures\n\n")
		room := opts.Limit - b.Len() - 200
		shown := 0
		for _, d := range details {
			if len(d) > room {
				break
			}
			b.WriteString(d)
			room -= len(d)
			shown++
		}
		if shown < len(details) {
			fmt.Fprintf(&b, "\n_%d more failures not shown here (size limit): see the run's HTML report or results.json._\n", len(details)-shown)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// markdownHead is the run's title, a note when it is incomplete, and its
// counts, accelerator and duration.
func markdownHead(run Run, recs []results.Record) string {
	var b strings.Builder
	n := counts(recs)
	fmt.Fprintf(&b, "## vmrunner run %s\n\n", md(run.Run.ID))
	if note := IncompleteNote(run.Report); note != "" {
		fmt.Fprintf(&b, "> **Incomplete run**: %s\n\n", md(note))
	}
	fmt.Fprintf(&b, "%d pass, %d fail, %d error, %d skip · accel %s · %s\n\n",
		n[protocol.StatusPass], n[protocol.StatusFail], n[protocol.StatusError], n[protocol.StatusSkip],
		md(run.Run.Accel), (time.Duration(run.Run.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	return b.String()
}

// markdownGrid is the verdict grid: a row per check, a column per kernel ×
// arch, cell saying what a record's cell holds ("–" where there is none).
func markdownGrid(recs []results.Record, cell func(*results.Record) string) string {
	g := newGrid(recs)
	var b strings.Builder
	b.WriteString("| check |")
	for _, t := range g.Targets {
		fmt.Fprintf(&b, " %s |", md(t.String()))
	}
	b.WriteString("\n|---|")
	for range g.Targets {
		b.WriteString(":-:|")
	}
	b.WriteString("\n")
	for _, c := range g.Checks {
		fmt.Fprintf(&b, "| %s |", md(c))
		for _, t := range g.Targets {
			if r := g.cell(t, c); r == nil {
				b.WriteString(" – |")
			} else {
				fmt.Fprintf(&b, " %s |", cell(r))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// statusCell is a grid cell's status emoji, or its status's name when it
// has none.
func statusCell(r *results.Record) string {
	return cmpOr(statusEmoji[r.Status], md(string(r.Status)))
}

// reasonCell is statusCell with the reason of a cell that is not a pass.
func reasonCell(r *results.Record) string {
	if r.Status == protocol.StatusPass {
		return statusEmoji[r.Status]
	}
	return statusCell(r) + " " + md(string(r.ReasonCode()))
}

// markdownTargetLines is the grid summarised: one line per kernel × arch.
func markdownTargetLines(recs []results.Record) string {
	g := newGrid(recs)
	var b strings.Builder
	b.WriteString("_The grid is too large for this page: per kernel and arch instead._\n\n")
	for _, t := range g.Targets {
		var tr []results.Record
		for _, r := range recs {
			if results.TargetOf(r) == t {
				tr = append(tr, r)
			}
		}
		n := counts(tr)
		fmt.Fprintf(&b, "- **%s**: %d pass, %d fail, %d error, %d skip\n", md(t.String()),
			n[protocol.StatusPass], n[protocol.StatusFail], n[protocol.StatusError], n[protocol.StatusSkip])
	}
	return b.String()
}

// markdownReasons counts the failures by reason, with what each means and
// what to do.
func markdownReasons(recs []results.Record) string {
	var order []protocol.Reason
	count := map[protocol.Reason]int{}
	for _, r := range problems(recs) {
		code := r.ReasonCode()
		if count[code] == 0 {
			order = append(order, code)
		}
		count[code]++
	}
	if len(order) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n### Failures by reason\n\n| reason | failures | what it means | what to do |\n|---|--:|---|---|\n")
	for _, code := range order {
		ri, _ := code.Info()
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s |\n", md(string(code)), count[code], md(ri.Meaning), md(ri.Action))
	}
	return b.String()
}

// markdownChanges lists the regressions against the baseline and the
// verifier figures that moved beyond the threshold.
func markdownChanges(base, run Run, threshold float64) string {
	var b strings.Builder
	c := Compare(base.Report, run.Report, CompareOptions{Threshold: threshold})
	fmt.Fprintf(&b, "\n### Against %s\n\n", md(base.Run.ID))
	regressions := 0
	for _, v := range c.Verdicts {
		if !v.Regression && v.OldReason == v.NewReason {
			continue
		}
		mark := ""
		if v.Regression {
			mark, regressions = " **regression**", regressions+1
		}
		fmt.Fprintf(&b, "- %s: %s → %s%s\n", md(v.String()), md(withReason(v.Old, v.OldReason)), md(withReason(v.New, v.NewReason)), mark)
	}
	if regressions == 0 {
		b.WriteString("No regression.\n")
	}
	oldRows, err1 := VerifierRows(base.Results)
	newRows, err2 := VerifierRows(run.Results)
	if err1 != nil || err2 != nil {
		return b.String()
	}
	var moved []VerifierChange
	for _, ch := range CompareVerifier(oldRows, newRows) {
		if g := ch.Growth(); g > threshold || g < -threshold {
			moved = append(moved, ch)
		}
	}
	if len(moved) > 0 {
		fmt.Fprintf(&b, "\n#### Verifier complexity changes over %.0f%%\n\n| program | kernel | insns before | insns after | change | share of the limit |\n|---|---|--:|--:|--:|--:|\n", threshold*100)
		for _, ch := range moved {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %.1f%% |\n", md(ch.New.Program), md(ch.New.Target.String()),
				ch.Old.Insns, ch.New.Insns, diffPercent(ch.Growth()), ch.New.LimitPercent())
		}
	}
	return b.String()
}

// markdownFailure is one failure folded: its reason and message, and the
// lines of its logs that say why (errorExcerpt), not their last lines:
// libbpf prints its errors before and around the verifier's log.
func markdownFailure(run Run, r results.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>%s <b>%s</b> %s: %s <code>%s</code></summary>\n\n", statusEmoji[r.Status],
		md(results.TargetOf(r).String()), md(r.Check), r.Status, md(string(r.ReasonCode())))
	fmt.Fprintf(&b, "%s\n", md(text.OneLine(r.Message, 500)))
	if r.ReasonDetail != "" {
		fmt.Fprintf(&b, "\n%s: %s\n", md(string(r.ReasonCode())), md(r.ReasonDetail))
	}
	if h := HintText(r); h != "" {
		fmt.Fprintf(&b, "\n%s\n", md(h))
	}
	logs := r.Artifacts
	if r.Status == protocol.StatusError && r.Console != "" {
		logs = append(logs, r.Console)
	}
	for _, a := range logs {
		if !strings.HasSuffix(a, ".log") || splitStream(a, logs) {
			continue
		}
		// A log's lines that say why (the verifier's error and what led
		// to it), not its last ones; a console's last lines (a panic).
		excerpt, which, err := errorExcerpt(run.Dir, a, markdownLogLines, 4096)
		if a == r.Console {
			excerpt, _, err = tailFile(run.Dir, a, markdownLogLines, 4096)
			which = "last lines"
		}
		if err != nil || strings.TrimSpace(excerpt) == "" {
			continue
		}
		fence := "```"
		for strings.Contains(excerpt, fence) {
			fence += "`"
		}
		fmt.Fprintf(&b, "\n%s (%s):\n\n%s\n%s\n%s\n", md(a), which, fence, strings.TrimRight(excerpt, "\n"), fence)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// markdownAcrossRows bounds the rows of the complexity-across-kernels
// table: the largest changes.
const markdownAcrossRows = 20

// markdownAcross is the verifier complexity across the run's kernels: the
// programs whose instructions processed on a kernel changed by more than
// threshold from their base kernel (VerifierRow.Growth), largest first.
func markdownAcross(recs []results.Record, threshold float64) string {
	rows, err := VerifierRows(recs)
	if err != nil {
		return ""
	}
	var moved []VerifierRow
	for _, r := range rows {
		if r.HasGrowth() && math.Abs(r.Growth) > threshold {
			moved = append(moved, r)
		}
	}
	if len(moved) == 0 {
		return ""
	}
	slices.SortStableFunc(moved, func(a, b VerifierRow) int { return cmp.Compare(math.Abs(b.Growth), math.Abs(a.Growth)) })
	var b strings.Builder
	fmt.Fprintf(&b, "\n#### Verifier complexity across kernels, changes over %.0f%%\n\n| program | kernel | base kernel | insns | change from the base | share of the limit |\n|---|---|---|--:|--:|--:|\n", threshold*100)
	for i, r := range moved {
		if i == markdownAcrossRows {
			fmt.Fprintf(&b, "\n_%d more: see vmrunner report verifier --sort growth._\n", len(moved)-i)
			break
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %.1f%% |\n", md(r.Program), md(r.Target.String()), md(r.Base), r.Insns, diffPercent(r.Growth), r.LimitPercent())
	}
	return b.String()
}

// splitStream reports whether a is a program's stdout.log or stderr.log
// listed with its output.log, which holds both.
func splitStream(a string, logs []string) bool {
	dir, name := path.Split(a)
	return (name == "stdout.log" || name == "stderr.log") && slices.Contains(logs, dir+"output.log")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// WriteMarkdownFile writes WriteMarkdown's document to path atomically.
func WriteMarkdownFile(path string, run Run, opts MarkdownOptions) error {
	var b strings.Builder
	if err := WriteMarkdown(&b, run, opts); err != nil {
		return err
	}
	if err := writeFile(path, []byte(b.String())); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}
