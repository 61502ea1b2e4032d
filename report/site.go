package report

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

//go:embed site.html.tmpl
var siteSource string

var siteTemplate = template.Must(template.New("site").Parse(siteSource))

// SiteOptions tune WriteSite.
type SiteOptions struct {
	// Keep is how many of the newest nights the site keeps (0: all).
	Keep int
	// CommitURL, when set, links a commit: the commit hash is appended
	// (https://github.com/OWNER/REPO/commit/).
	CommitURL string
	// Title heads the page (default "vmrunner nights").
	Title string
}

// SiteStats is what WriteSite wrote.
type SiteStats struct {
	Nights    int      // nights on the site
	Dropped   []string // run ids left out by Keep
	IndexSize int64    // index.html in bytes: the page a visitor loads
	TotalSize int64    // every file of the site
	Files     int
}

// SiteIndex is the site's front page; each night is in
// SiteNightsDir/<run id>/ with its results.json, its report.html and the
// files they link.
const (
	SiteIndex     = "index.html"
	SiteNightsDir = "nights"
	siteMarker    = ".vmrunner-site"
)

// WriteSite writes a static site of the runs (one a night) into the
// directory out: an index.html with the history grid, the checks' trend
// lines, the verifier's complexity over nights and the first bad night of
// every check that turned red, and per night its own report. Nothing is
// loaded from elsewhere: the directory is served as it is (GitHub Pages,
// any file server, file://).
//
// Each night's directory holds a copy of its results.json and of the files
// it names (console logs, artifacts), so the nights directory of one site is
// the input of the next (vmrunner report site OUT OUT/nights/*/ NEW). Files
// a run directory lacks are dropped from the copy's records, so that no link
// dangles.
//
// out is replaced whole: it must not exist, be empty, or be a site written
// before (it holds .vmrunner-site).
func WriteSite(out string, runs []Run, opts SiteOptions) (SiteStats, error) {
	var st SiteStats
	if len(runs) == 0 {
		return st, errors.New("write site: no runs")
	}
	if err := checkSiteDir(out); err != nil {
		return st, err
	}
	nights, err := siteNights(runs)
	if err != nil {
		return st, err
	}
	if opts.Keep > 0 && len(nights) > opts.Keep {
		for _, n := range nights[:len(nights)-opts.Keep] {
			st.Dropped = append(st.Dropped, n.ID)
		}
		nights = nights[len(nights)-opts.Keep:]
	}
	parent, base := filepath.Split(filepath.Clean(out))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".site-")
	if err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	for i := range nights {
		if err := writeNight(tmp, &nights[i]); err != nil {
			return st, err
		}
	}
	page := newSitePage(nights, opts)
	var b strings.Builder
	if err := siteTemplate.Execute(&b, page); err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, SiteIndex), []byte(b.String()), 0o644); err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	// Pages serves files whose names start with "_" or "." only without
	// Jekyll: .nojekyll says so, and marks the directory as a site.
	for _, name := range []string{siteMarker, ".nojekyll"} {
		if err := os.WriteFile(filepath.Join(tmp, name), nil, 0o644); err != nil {
			return st, fmt.Errorf("write site: %w", err)
		}
	}
	if err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st.TotalSize += fi.Size()
		st.Files++
		return nil
	}); err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	st.Nights, st.IndexSize = len(nights), int64(b.Len())
	if err := os.RemoveAll(out); err != nil {
		return st, fmt.Errorf("write site: replace %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return st, fmt.Errorf("write site: %w", err)
	}
	return st, nil
}

// checkSiteDir refuses to replace a directory that is not a site.
func checkSiteDir(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("write site: %w", err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, siteMarker)); err != nil {
		return fmt.Errorf("write site: %s exists and is not a site vmrunner wrote (no %s): give a new directory", out, siteMarker)
	}
	return nil
}

// night is one run on the site.
type night struct {
	Run
	ID    string // its directory under nights/
	Label string // when it started, UTC
	recs  []results.Record
}

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// siteNights orders the runs by start, oldest first; run ids name their
// directories, so they must be plain names and distinct.
func siteNights(runs []Run) ([]night, error) {
	var ns []night
	seen := map[string]string{}
	for _, r := range runs {
		id := r.Run.ID
		if !runIDRE.MatchString(id) {
			return nil, fmt.Errorf("write site: %s: run id %q is not a plain name (letters, digits, '.', '_', '-')", r.Dir, id)
		}
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("write site: run %s is given twice: %s and %s", id, prev, r.Dir)
		}
		seen[id] = r.Dir
		label := id
		if !r.Run.Started.IsZero() {
			label = r.Run.Started.UTC().Format("2006-01-02 15:04")
		}
		ns = append(ns, night{Run: r, ID: id, Label: label})
	}
	slices.SortStableFunc(ns, func(a, b night) int {
		return cmp.Or(a.Run.Run.Started.Compare(b.Run.Run.Started), strings.Compare(a.ID, b.ID))
	})
	return ns, nil
}

// writeNight copies a run into dir/nights/<id>/ with the files its records
// name, and writes its report.html there.
func writeNight(dir string, n *night) error {
	nd := filepath.Join(dir, SiteNightsDir, n.ID)
	if err := os.MkdirAll(nd, 0o755); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	rep := n.Report
	rep.Results = slices.Clone(rep.Results)
	copied := map[string]bool{}
	copyFile := func(rel string) bool {
		if done, ok := copied[rel]; ok {
			return done
		}
		ok := copyRunFile(n.Dir, nd, rel) == nil
		copied[rel] = ok
		return ok
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Console != "" && !copyFile(r.Console) {
			r.Console = ""
		}
		var arts []string
		for _, a := range r.Artifacts {
			if copyFile(a) {
				arts = append(arts, a)
			}
		}
		r.Artifacts = arts
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	if err := os.WriteFile(filepath.Join(nd, "results.json"), b, 0o644); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	n.Report, n.Dir = rep, nd
	n.recs = records(rep)
	var page strings.Builder
	if err := WriteHTML(&page, n.Run, ""); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(nd, HTMLName), []byte(page.String()), 0o644); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	return nil
}

// copyRunFile copies a file a record names from the run directory, read
// through an os.Root like every other file of a run (package doc).
func copyRunFile(from, to, rel string) error {
	if localLink("", rel) == "" {
		return errors.New("not a local path")
	}
	root, err := os.OpenRoot(from)
	if err != nil {
		return err
	}
	defer root.Close()
	src, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	dst := filepath.Join(to, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sitePage is what site.html.tmpl renders.
type sitePage struct {
	Title    string
	Nights   int
	First    string
	Last     string
	Targets  []results.Target
	History  []siteHistoryRow // newest first
	FirstBad []siteStreak
	Checks   []siteCheck
	Programs []siteProgram
	Palette  []siteLegend // the verifier charts' colour per target
}

type siteHistoryRow struct {
	Label, ID, Href, Version string
	Incomplete               bool
	Cells                    []siteCell
}

type siteCell struct {
	Status string // worst verdict, "none" without records
	Text   string
	Title  string
}

type siteCheck struct {
	Name           string
	PassRate, Time template.HTML
	LastRate       string
	LastTime       string
}

type siteProgram struct {
	Name  string
	Chart template.HTML
	Peak  string
}

type siteLegend struct {
	Target results.Target
	Class  string
}

// siteStreak is a check on a target that went red: its first bad night, the
// good night before it and what changed between them.
type siteStreak struct {
	Check      string
	Target     results.Target
	Bad, Good  siteNightRef
	Verdict    string // at the first bad night, with its reason
	Commit     siteChange
	Release    siteChange
	Until      string // "still red", or the night it went green again
	UntilHref  string
	StillRed   bool
	SinceStart bool // red since the first night on the site: no good night before
}

type siteNightRef struct{ Label, Href string }

type siteChange struct {
	Old, New       string
	OldURL, NewURL string
	Changed        bool
	Unknown        bool // the bad night's record does not say
}

var siteClasses = []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}

func newSitePage(ns []night, opts SiteOptions) sitePage {
	p := sitePage{Title: cmp.Or(opts.Title, "vmrunner nights"), Nights: len(ns), First: ns[0].Label, Last: ns[len(ns)-1].Label}
	var all []results.Record
	for _, n := range ns {
		all = append(all, n.recs...)
	}
	p.Targets = targets(all)
	labels := make([]string, len(ns))
	for i, n := range ns {
		labels[i] = n.Label
	}
	for i := len(ns) - 1; i >= 0; i-- {
		p.History = append(p.History, historyRow(ns[i], p.Targets))
	}
	p.FirstBad = firstBad(ns, all, opts.CommitURL)
	for _, c := range checks(all) {
		p.Checks = append(p.Checks, checkTrend(ns, labels, c))
	}
	for i, t := range p.Targets {
		p.Palette = append(p.Palette, siteLegend{Target: t, Class: siteClasses[i%len(siteClasses)]})
	}
	p.Programs = programTrends(ns, labels, p.Targets)
	return p
}

func nightHref(id string) string { return SiteNightsDir + "/" + id + "/" + HTMLName }

func historyRow(n night, ts []results.Target) siteHistoryRow {
	row := siteHistoryRow{Label: n.Label, ID: n.ID, Href: nightHref(n.ID), Version: n.Run.Run.Version, Incomplete: n.Incomplete()}
	for _, t := range ts {
		var worst *results.Record
		var bad []string
		total := 0
		for i := range n.recs {
			r := &n.recs[i]
			if results.TargetOf(*r) != t {
				continue
			}
			total++
			if worst == nil || severity(r.Status) > severity(worst.Status) {
				worst = r
			}
			if severity(r.Status) >= severity(protocol.StatusFail) {
				bad = append(bad, r.Check)
			}
		}
		if worst == nil {
			row.Cells = append(row.Cells, siteCell{Status: "none", Text: "–", Title: t.String() + ": not run that night"})
			continue
		}
		c := siteCell{Status: string(worst.Status), Text: string(worst.Status)}
		if !worst.Status.Valid() {
			c.Status, c.Text = "unknown", "?"
		}
		c.Title = fmt.Sprintf("%s on %s: %s, %d of %d records fail or error", t, n.Label, worst.Status, len(bad), total)
		if len(bad) > 0 {
			c.Text = fmt.Sprintf("%d %s", len(bad), worst.Status)
			c.Title += ": " + strings.Join(firstN(bad, 8), ", ")
		}
		row.Cells = append(row.Cells, c)
	}
	return row
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clip(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}

func isRed(s protocol.Status) bool { return severity(s) >= severity(protocol.StatusFail) }

// firstBad finds, for every check × target, each run of red nights: its
// first night, the last night with a record before it (good) and what
// differs between them. Newest first.
func firstBad(ns []night, all []results.Record, commitURL string) []siteStreak {
	type key struct {
		t results.Target
		c string
	}
	var keys []key
	seen := map[key]bool{}
	for _, r := range all {
		k := key{results.TargetOf(r), r.Check}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	var out []siteStreak
	for _, k := range keys {
		var prev *results.Record // the last record of the check on the target
		prevNight := -1
		var open *siteStreak
		for i, n := range ns {
			r := recordOf(n.recs, k.t, k.c)
			if r == nil && k.c == results.VMCheck {
				// A VM has a record of its own only when it went wrong: a
				// night its target has records without one is a good night.
				r = vmPassed(n.recs, k.t)
			}
			if r == nil {
				continue
			}
			switch {
			case isRed(r.Status) && open == nil && (prev == nil || !isRed(prev.Status)):
				s := siteStreak{Check: k.c, Target: k.t, Bad: siteNightRef{n.Label, nightHref(n.ID)}, Verdict: verdictText(r),
					StillRed: true, Until: "still red"}
				if prev == nil {
					s.SinceStart = true
					s.Release = releaseChange("", r.KernelRelease)
					s.Commit = commitChange("", n.Run.Run.Version, commitURL)
				} else {
					g := ns[prevNight]
					s.Good = siteNightRef{g.Label, nightHref(g.ID)}
					s.Release = releaseChange(prev.KernelRelease, r.KernelRelease)
					s.Commit = commitChange(g.Run.Run.Version, n.Run.Run.Version, commitURL)
				}
				out = append(out, s)
				open = &out[len(out)-1]
			case !isRed(r.Status) && open != nil:
				open.StillRed, open.Until, open.UntilHref = false, "green again "+n.Label, nightHref(n.ID)
				open = nil
			}
			prev, prevNight = r, i
		}
	}
	// Newest first by the night's place, not its id.
	order := map[string]int{}
	for i, n := range ns {
		order[nightHref(n.ID)] = i
	}
	slices.SortStableFunc(out, func(a, b siteStreak) int {
		return cmp.Or(cmp.Compare(order[b.Bad.Href], order[a.Bad.Href]), naturalCompare(a.Check, b.Check),
			naturalCompare(a.Target.Kernel, b.Target.Kernel), strings.Compare(a.Target.Arch, b.Target.Arch))
	})
	return out
}

func recordOf(recs []results.Record, t results.Target, check string) *results.Record {
	var worst *results.Record
	for i := range recs {
		r := &recs[i]
		if r.Check == check && results.TargetOf(*r) == t && (worst == nil || severity(r.Status) > severity(worst.Status)) {
			worst = r
		}
	}
	return worst
}

// vmPassed stands for the vm check of a target that has records on a night
// and none about its VM; nil when the target did not run.
func vmPassed(recs []results.Record, t results.Target) *results.Record {
	for _, r := range recs {
		if results.TargetOf(r) == t {
			return &results.Record{Kernel: t.Kernel, Arch: t.Arch, KernelRelease: r.KernelRelease, Check: results.VMCheck, Status: protocol.StatusPass}
		}
	}
	return nil
}

// releaseChange compares kernel releases; a record without one (a VM that
// never said) is not a change.
func releaseChange(old, new string) siteChange {
	c := siteChange{Old: old, New: new, Changed: old != "" && new != "" && old != new}
	c.Unknown = new == ""
	return c
}

func verdictText(r *results.Record) string {
	s := string(r.Status)
	if code := r.ReasonCode(); code != "" {
		s += " " + string(code)
	}
	return s
}

// commitRE finds the commit in a vmrunner version: the Makefile's git
// describe (abc1234, v0.1.0-3-gabc1234, …-dirty) or a development build's
// dev+abc123456789.
var commitRE = regexp.MustCompile(`(?:^|\+|-g)([0-9a-f]{7,40})(?:-dirty)?$`)

func commitOf(version string) string {
	if m := commitRE.FindStringSubmatch(version); m != nil {
		return m[1]
	}
	return ""
}

func commitChange(old, new, url string) siteChange {
	c := siteChange{Old: old, New: new, Changed: old != "" && old != new}
	if url != "" {
		if h := commitOf(old); h != "" {
			c.OldURL = url + h
		}
		if h := commitOf(new); h != "" {
			c.NewURL = url + h
		}
	}
	return c
}

// checkTrend is a check's pass rate (of the targets it ran on, skips left
// out) and mean duration per night.
func checkTrend(ns []night, labels []string, check string) siteCheck {
	rate := make([]float64, len(ns))
	took := make([]float64, len(ns))
	maxTook := 0.0
	for i, n := range ns {
		var ran, passed, timed int
		var sum int64
		for _, r := range n.recs {
			if r.Check != check {
				continue
			}
			if r.Status != protocol.StatusSkip {
				ran++
				if r.Status == protocol.StatusPass {
					passed++
				}
			}
			if r.DurationMS > 0 {
				timed++
				sum += r.DurationMS
			}
		}
		if check == results.VMCheck {
			// A VM has a record only when it went wrong: every other
			// target of the night passed it.
			wrong := ran - passed
			ran = len(targets(n.recs))
			passed = ran - wrong
		}
		rate[i], took[i] = math.NaN(), math.NaN()
		if ran > 0 {
			rate[i] = float64(passed) * 100 / float64(ran)
		}
		if timed > 0 {
			took[i] = float64(sum) / float64(timed)
			maxTook = max(maxTook, took[i])
		}
	}
	c := siteCheck{Name: check,
		PassRate: chart{Title: check + ": pass rate per night", Labels: labels, YMax: 100, YUnit: "%",
			Series: []chartSeries{{Name: "pass rate", Class: "rate", Y: rate}}}.svg(),
		Time: chart{Title: check + ": mean duration per night", Labels: labels, YMax: niceCeil(maxTook), YUnit: "ms",
			Series: []chartSeries{{Name: "mean duration", Class: "time", Y: took}}}.svg(),
		LastRate: "–", LastTime: "–",
	}
	if v := lastValue(rate); !math.IsNaN(v) {
		c.LastRate = fmt.Sprintf("%.0f%%", v)
	}
	if v := lastValue(took); !math.IsNaN(v) {
		c.LastTime = msString(int64(v))
	}
	return c
}

func lastValue(vs []float64) float64 {
	for i := len(vs) - 1; i >= 0; i-- {
		if !math.IsNaN(vs[i]) {
			return vs[i]
		}
	}
	return math.NaN()
}

// programTrends is each verifier program's instructions processed, as a
// share of its kernel's limit, per night and target: one line per target.
func programTrends(ns []night, labels []string, ts []results.Target) []siteProgram {
	type key struct {
		p string
		t results.Target
	}
	vals := map[key][]float64{}
	var programs []string
	for i, n := range ns {
		rows, err := VerifierRows(n.recs)
		if err != nil {
			continue
		}
		for _, r := range rows {
			k := key{r.Program, r.Target}
			if vals[k] == nil {
				if !slices.Contains(programs, r.Program) {
					programs = append(programs, r.Program)
				}
				vals[k] = make([]float64, len(ns))
				for j := range vals[k] {
					vals[k][j] = math.NaN()
				}
			}
			vals[k][i] = r.LimitPercent()
		}
	}
	slices.SortFunc(programs, naturalCompare)
	var out []siteProgram
	for _, p := range programs {
		c := chart{Title: p + ": instructions processed, % of the kernel's limit, per night", Labels: labels, YUnit: "%", Limit: 100}
		peak, peakAt := 0.0, ""
		for i, t := range ts {
			v := vals[key{p, t}]
			if v == nil {
				continue
			}
			for j, x := range v {
				if x > peak {
					peak, peakAt = x, t.String()+" "+labels[j]
				}
			}
			c.Series = append(c.Series, chartSeries{Name: t.String(), Class: siteClasses[i%len(siteClasses)], Y: v})
		}
		c.YMax = niceCeil(max(peak, 0.01))
		sp := siteProgram{Name: p, Chart: c.svg(), Peak: "–"}
		if peakAt != "" {
			sp.Peak = fmt.Sprintf("%.2f%% (%s)", peak, peakAt)
		}
		out = append(out, sp)
	}
	return out
}

type siteRef struct{ Text, URL string }

func (c siteChange) OldRef() siteRef { return siteRef{c.Old, c.OldURL} }
func (c siteChange) NewRef() siteRef { return siteRef{c.New, c.NewURL} }
