package plan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// GitHubEntry is one shard as a GitHub Actions job matrix entry.
type GitHubEntry struct {
	Index   int      `json:"index"`   // 1-based
	Shard   string   `json:"shard"`   // "I/N", for vmrunner run --shard
	Runner  string   `json:"runner"`  // for runs-on
	Targets []string `json:"targets"` // "KERNEL/ARCH", matrix order
	Plan    string   `json:"plan"`    // the plan's hash, for vmrunner run --plan-hash
}

// GitHub returns the plan as the value of strategy.matrix, on one line:
// {"include": [entry, ...]}.
func (p *Plan) GitHub() ([]byte, error) {
	v := struct {
		Include []GitHubEntry `json:"include"`
	}{}
	for _, s := range p.Shards {
		e := GitHubEntry{Index: s.Index, Shard: s.Name(len(p.Shards)), Runner: s.Runner, Plan: p.Hash}
		for _, t := range s.Targets {
			e.Targets = append(e.Targets, t.String())
		}
		v.Include = append(v.Include, e)
	}
	return json.Marshal(v)
}

// WriteText prints the plan for people: one line per shard and the expected
// makespan against its lower bound. source says where the timings came from.
func (p *Plan) WriteText(w io.Writer, source string) error {
	n := len(p.Shards)
	targets := 0
	for _, s := range p.Shards {
		targets += len(s.Targets)
	}
	by := "by target count (give --timings RESULTS.json to balance by a previous run's durations)"
	if p.ByTimings {
		by = "by the durations in " + source
	}
	fmt.Fprintf(w, "plan %s: %d targets in %d shards, balanced %s\n", short(p.Hash), targets, n, by)
	fmt.Fprintf(w, "matrix %s, lock %s\n\n", short(p.MatrixHash), cmp.Or(short(p.LockHash), "none"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tRUNNER\tEXPECTED\tTARGETS")
	for _, s := range p.Shards {
		var ts []string
		for _, t := range s.Targets {
			ts = append(ts, t.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name(n), s.Runner, p.format(s.Cost), strings.Join(ts, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nexpected makespan %s (lower bound %s = max(longest target %s, total %s / %d shards))\n",
		p.format(p.Makespan()), p.format(p.LowerBound()), p.format(p.Longest), p.format(p.Total), n)
	return err
}

// format prints a cost: a duration with timings, else a target count.
func (p *Plan) format(c int64) string {
	if p.ByTimings {
		return (time.Duration(c) * time.Millisecond).Round(100 * time.Millisecond).String()
	}
	if c == 1 {
		return "1 target"
	}
	return fmt.Sprintf("%d targets", c)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
