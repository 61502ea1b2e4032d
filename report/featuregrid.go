package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// WriteFeatureGrid prints the features check of a run as a grid: one row
// per probed feature (helpers once per program type), one column per
// kernel × arch, and the upstream release that added the feature. A cell is
// "yes", "no" or "err"; "yes+" marks a backport (supported before the
// upstream release), "NO!" a feature missing from a kernel that should have
// it, "off" one the kernel was built without. It returns the number of
// missing features, and an error when the run has no features results.
func WriteFeatureGrid(w io.Writer, recs []results.Record) (int, error) {
	type column struct {
		label string
		cells map[string]string
	}
	var cols []column
	var rows []string
	since := map[string]string{}
	missing := 0
	for _, r := range recs {
		if r.Check != "features" || len(r.Details) == 0 {
			continue
		}
		var d protocol.FeaturesDetails
		if err := json.Unmarshal(r.Details, &d); err != nil {
			return 0, fmt.Errorf("read features of %s/%s: %w", r.Kernel, r.Arch, err)
		}
		col := column{label: r.Kernel + "/" + r.Arch, cells: map[string]string{}}
		for _, f := range d.Results {
			key := f.Feature
			if f.Program != "" {
				key += "@" + f.Program
			}
			switch old, ok := since[key]; {
			case !ok:
				rows = append(rows, key)
				since[key] = f.Since
			case !slices.Contains(strings.Split(old, "/"), f.Since):
				// Arch-dependent: tracing programs are 5.5, 6.0 on arm64.
				since[key] = old + "/" + f.Since
			}
			col.cells[key] = featureCell(f)
			if f.Verdict == verdictMissing {
				missing++
			}
		}
		cols = append(cols, col)
	}
	if len(cols) == 0 {
		return 0, fmt.Errorf("the run has no features results")
	}
	slices.SortStableFunc(cols, func(a, b column) int { return strings.Compare(a.label, b.label) })

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"FEATURE", "SINCE"}
	for _, c := range cols {
		header = append(header, c.label)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, key := range rows {
		line := []string{key, since[key]}
		for _, c := range cols {
			line = append(line, cmp.Or(c.cells[key], "-"))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return 0, err
	}
	_, err := fmt.Fprintf(w, "\nyes/no: probe result; yes+ backport (before SINCE); NO! missing although upstream has it; off: config option not set; err: probe error; -: not probed\n")
	return missing, err
}

// The verdicts of protocol.FeatureResult, as bpfprobe.Verdict spells them.
// They are repeated here so that reading a run does not link cilium/ebpf (which
// bpfprobe's table needs); a test holds them equal to bpfprobe's.
const (
	verdictMissing  = "missing"
	verdictBackport = "backport"
	verdictNotBuilt = "not-built"
)

func featureCell(f protocol.FeatureResult) string {
	switch f.Verdict {
	case verdictMissing:
		return "NO!"
	case verdictBackport:
		return "yes+"
	case verdictNotBuilt:
		return "off"
	}
	switch f.Status {
	case "supported":
		return "yes"
	case "unsupported":
		return "no"
	}
	return "err"
}
