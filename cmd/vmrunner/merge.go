package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

func newReportMergeCmd() *cobra.Command {
	var (
		junit, html  string
		allowPartial bool
	)
	cmd := &cobra.Command{
		Use:   "merge OUT RUN... [--allow-partial] [--junit FILE] [--html FILE]",
		Short: "Merge the shard runs of one plan into one run directory",
		Long: `Merge the runs of vmrunner run --shard I/N (run directories or their
results.json) into the new run directory OUT: results.json with every record,
each VM's console log and artifacts under its directory, report.html, and with
--junit and --html those files. Every report and report compare then treat OUT
like a run made on one machine.

The runs must be shards of one plan: the same matrix file, lock file and plan
hash, each shard once, and every shard present with a record for each of its
targets. Each shard must be whole: one record per check of each VM, records
that make the exit code its run recorded, a results.json of at most 64 MiB
(read no further), a run directory of directories and regular files only.
Nothing is left at OUT unless the merge completes: it is written beside OUT
and renamed at the end. A missing shard (or a target an unfinished shard has no records for) is
an error naming it; with --allow-partial its checks get error records
(error_kind "missing") instead, and the merge exits 3.

Exit codes, as vmrunner run's, from the merged records:
  0    every check passed
  1    a check failed
  2    bad input: runs that are not shards of one plan, a missing or doubled
       shard, a results.json that cannot be read or is too large, a shard
       whose records are doubled or disagree with its exit code, a symlink
       or device in a shard's directory, OUT not empty
  3    infrastructure, in a shard or a missing one (--allow-partial)
  130  a shard was interrupted`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			if err := results.CheckNewDir(out); err != nil {
				return usagef("report merge: %v", err)
			}
			if err := checkOutputFiles(junit, html); err != nil {
				return err
			}
			var parts []results.Part
			for _, path := range args[1:] {
				run, err := report.LoadShard(path)
				if err != nil {
					return usagef("report merge: %v", err)
				}
				parts = append(parts, results.Part{Report: run.Report, Dir: run.Dir})
			}
			id := time.Now().UTC().Format("20060102-150405") + "-merge"
			rep, err := results.Merge(parts, results.MergeOptions{ID: id, AllowPartial: allowPartial})
			if err != nil {
				return usageError{err}
			}
			err = results.WriteMerge(out, rep, parts, func(tmp string) error {
				return report.WriteHTMLFile(filepath.Join(tmp, report.HTMLName), report.Run{Report: rep, Dir: tmp})
			})
			var bad *results.BadShardError
			if errors.As(err, &bad) {
				return usagef("report merge: %v", err)
			}
			if err != nil {
				return &exitError{code: results.ExitInfra, err: fmt.Errorf("report merge: %w", err)}
			}
			run := report.Run{Report: rep, Dir: out}
			w := cmd.OutOrStdout()
			if err := report.WriteSummary(w, rep); err != nil {
				return err
			}
			s := rep.Run.Shard
			fmt.Fprintf(w, "merged %d of %d shards of plan %.12s into %s\n", len(parts), s.Count, s.Plan, filepath.Join(out, "results.json"))
			if err := writeReports(run, junit, html, w); err != nil {
				if rep.Run.ExitCode == results.ExitOK {
					return &exitError{code: results.ExitInfra, err: err}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "vmrunner: %v\n", err)
			}
			if rep.Run.ExitCode != results.ExitOK {
				return &exitError{code: rep.Run.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&allowPartial, "allow-partial", false, "merge without missing shards: their targets get error records")
	fl.StringVar(&junit, "junit", "", "also write the merged results as JUnit XML to FILE")
	fl.StringVar(&html, "html", "", "also write the HTML report to FILE (OUT/report.html is always written)")
	return cmd
}
