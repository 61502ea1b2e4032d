package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// HTMLName is the page written into every run directory.
const HTMLName = "report.html"

type htmlPage struct {
	Run        results.RunInfo
	Incomplete string // IncompleteNote
	Title      string
	Started    string
	Took       string
	Counts     map[string]int
	Total      int
	Columns    []htmlColumn
	Rows       []htmlRow
	Cells      []*htmlCell // in row order, for the detail panels
	Reasons    []*htmlReason
	Heat       *htmlHeat // the verifier's figures, when the run has them
}

// htmlHeat is the verifier complexity heat map: programs × kernels, a
// cell's colour the share of the kernel's instruction limit used.
type htmlHeat struct {
	Targets []results.Target
	Rows    []htmlHeatRow
}

type htmlHeatRow struct {
	Program string
	Cells   []htmlHeatCell
}

type htmlHeatCell struct {
	Class, Text, Title string
}

// heatClass buckets a share of the limit, in percent.
func heatClass(pct float64) string {
	for i, upTo := range []float64{1, 10, 25, 50, 80} {
		if pct < upTo {
			return fmt.Sprintf("h%d", i)
		}
	}
	return "h5"
}

func newHeat(recs []results.Record) *htmlHeat {
	rows, err := VerifierRows(recs)
	if err != nil {
		return nil
	}
	h := &htmlHeat{Targets: newGrid(recs).Targets}
	byProgram := map[string]map[results.Target]VerifierRow{}
	var programs []string
	for _, r := range rows {
		if byProgram[r.Program] == nil {
			byProgram[r.Program] = map[results.Target]VerifierRow{}
			programs = append(programs, r.Program)
		}
		byProgram[r.Program][r.Target] = r
	}
	for _, p := range programs {
		row := htmlHeatRow{Program: p}
		for _, t := range h.Targets {
			r, ok := byProgram[p][t]
			if !ok {
				row.Cells = append(row.Cells, htmlHeatCell{Class: "none", Text: "–"})
				continue
			}
			pct := r.LimitPercent()
			row.Cells = append(row.Cells, htmlHeatCell{Class: heatClass(pct), Text: fmt.Sprintf("%.1f%%", pct),
				Title: fmt.Sprintf("%s on %s: %d insns processed, %.2f%% of the limit%s; %d states, peak %d; %s", p, t, r.Insns, pct, heatGrowth(r), r.States, r.Peak, r.Verdict)})
		}
		h.Rows = append(h.Rows, row)
	}
	return h
}

// heatGrowth is ", +20.0% from 5.10" for a row compared with its base
// kernel.
func heatGrowth(r VerifierRow) string {
	if !r.HasGrowth() || r.Base == r.Target.Kernel {
		return ""
	}
	return fmt.Sprintf(", %s from %s", diffPercent(r.Growth), r.Base)
}

type htmlColumn struct {
	Target  results.Target
	Release string
	Accel   string
	Boot    string
}

type htmlRow struct {
	Check   string
	Problem bool
	Cells   []*htmlCell
}

type htmlCell struct {
	ID        string
	Target    results.Target
	Check     string
	Status    string // "none" when the check has no record on this target
	Rec       *results.Record
	Took      string
	Boot      string
	Details   string
	Console   template.URL
	Artifacts []htmlLink
	Source    string
	Tail      string // the console's last lines, for an error
	Reason    string // the record's reason code, "" for a pass
	ReasonFor string // what it means and what to do
	Hint      string // a reason read from the program's output, labelled so, with what to do
}

// htmlReason is one reason's group: the cells that have it.
type htmlReason struct {
	Reason, Meaning, Action string
	Cells                   []*htmlCell
}

type htmlLink struct {
	Name string
	Href template.URL
}

// WriteHTML writes the run as one self-contained page (inline CSS and JS, no
// external assets): a grid of checks × kernel/arch coloured by status, each
// cell opening the record's message, details, splats, boot time and links.
// Links to console.log and artifacts are relative to linkBase, the path from
// the page's directory to the run directory ("" for a page inside the run
// directory, as HTMLName is).
func WriteHTML(w io.Writer, run Run, linkBase string) error {
	recs := records(run.Report)
	g := newGrid(recs)
	n := counts(recs)
	p := htmlPage{
		Run:        run.Run,
		Incomplete: IncompleteNote(run.Report),
		Title:      "vmrunner " + run.Run.ID,
		Took:       (time.Duration(run.Run.DurationMS) * time.Millisecond).Round(100 * time.Millisecond).String(),
		Counts:     map[string]int{},
		Total:      len(recs),
	}
	if !run.Run.Started.IsZero() {
		p.Started = run.Run.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for st, k := range n {
		p.Counts[string(st)] = k
	}
	for _, t := range g.Targets {
		col := htmlColumn{Target: t}
		for _, c := range g.Checks {
			if r := g.cell(t, c); r != nil {
				col.Release, col.Accel = r.KernelRelease, r.Accel
				if r.BootMS > 0 {
					col.Boot = bootString(r)
				}
				break
			}
		}
		p.Columns = append(p.Columns, col)
	}
	for i, c := range g.Checks {
		row := htmlRow{Check: c}
		for j, t := range g.Targets {
			cell := &htmlCell{ID: fmt.Sprintf("c%d-%d", i, j), Target: t, Check: c, Status: "none"}
			if r := g.cell(t, c); r != nil {
				fillCell(cell, r, linkBase)
				if r.Status == protocol.StatusError && r.Console != "" {
					if text, _, err := tailFile(run.Dir, r.Console, consoleLines, consoleBytes); err == nil {
						cell.Tail = text
					}
				}
				if severity(r.Status) >= severity(protocol.StatusFail) {
					row.Problem = true
				}
			}
			row.Cells = append(row.Cells, cell)
			p.Cells = append(p.Cells, cell)
			if cell.Reason != "" && cell.Status != string(protocol.StatusPass) {
				p.addReason(cell)
			}
		}
		p.Rows = append(p.Rows, row)
	}
	p.Heat = newHeat(recs)
	if err := htmlTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// bootString is a record's boot time, and "restored" for a VM restored
// from a snapshot.
func bootString(r *results.Record) string {
	if r.Boot == "snapshot" {
		return msString(r.BootMS) + " (restored)"
	}
	return msString(r.BootMS)
}

// addReason puts a failed cell in its reason's group, groups in the order
// their first cell appears.
func (p *htmlPage) addReason(c *htmlCell) {
	for _, g := range p.Reasons {
		if g.Reason == c.Reason {
			g.Cells = append(g.Cells, c)
			return
		}
	}
	g := &htmlReason{Reason: c.Reason, Cells: []*htmlCell{c}}
	if ri, ok := protocol.Reason(c.Reason).Info(); ok {
		g.Meaning, g.Action = ri.Meaning, ri.Action
	}
	p.Reasons = append(p.Reasons, g)
}

func fillCell(c *htmlCell, r *results.Record, linkBase string) {
	c.Rec = r
	c.Reason = string(r.ReasonCode())
	c.ReasonFor = reasonTitle(r.ReasonCode())
	c.Hint = HintText(*r)
	c.Status = string(r.Status)
	if !r.Status.Valid() {
		c.Status = "unknown"
	}
	c.Took = msString(r.DurationMS)
	if r.BootMS > 0 {
		c.Boot = bootString(r)
	}
	if len(r.Details) > 0 {
		c.Details = prettyJSON(r.Details)
	}
	if s := r.Source; s != nil {
		c.Source = strings.TrimSpace(strings.Join([]string{s.Type, s.Package, s.Version}, " "))
		if s.SHA256 != "" {
			c.Source += " sha256:" + s.SHA256
		}
	}
	c.Console = localLink(linkBase, r.Console)
	for _, a := range r.Artifacts {
		if href := localLink(linkBase, a); href != "" {
			c.Artifacts = append(c.Artifacts, htmlLink{Name: a, Href: href})
		}
	}
}

// localLink turns a run-relative path from results.json into a relative URL,
// or "" when it is not a plain path inside the run directory.
func localLink(base, rel string) template.URL {
	if rel == "" || !filepath.IsLocal(filepath.FromSlash(rel)) || strings.ContainsAny(rel, `\:`) {
		return ""
	}
	u := url.URL{Path: path.Join(filepath.ToSlash(base), rel)}
	return template.URL(u.EscapedPath()) // relative, escaped, no scheme: safe as href
}

func msString(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).Round(10 * time.Millisecond).String()
}

// WriteHTMLFile writes the page to path, with links relative to it.
func WriteHTMLFile(path string, run Run) error {
	base, err := linkBaseFor(path, run.Dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := WriteHTML(&b, run, base); err != nil {
		return err
	}
	return writeFile(path, []byte(b.String()))
}

func linkBaseFor(page, runDir string) (string, error) {
	pageDir, err := filepath.Abs(filepath.Dir(page))
	if err != nil {
		return "", fmt.Errorf("write html: %w", err)
	}
	dir, err := filepath.Abs(runDir)
	if err != nil {
		return "", fmt.Errorf("write html: %w", err)
	}
	rel, err := filepath.Rel(pageDir, dir)
	if err != nil {
		return dir, nil //nolint:nilerr // no relative path (another volume): link absolutely
	}
	if rel == "." {
		return "", nil
	}
	return rel, nil
}

// writeFile writes through a temporary file so a reader never sees half a
// report.
func writeFile(path string, data []byte) error { return results.WriteFileAtomic(path, data) }
