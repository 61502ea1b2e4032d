package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Show or compare past runs",
		Long: `Read past runs: a RUN is a run directory (runs/<run-id>, runs/latest)
or its results.json.`,
	}
	cmd.AddCommand(newReportShowCmd(), newReportCompareCmd(), newReportWriteCmd(), newReportFeaturesCmd(), newReportVerifierCmd(), newReportMergeCmd(), newReportSiteCmd())
	return cmd
}

func newReportShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [RUN]",
		Short: "Print the summary table of a past run (default runs/latest)",
		Long: `Print the summary table of a past run (default runs/latest).

A run that did not finish (results.json says finished: false: vmrunner was
killed or crashed, or is still running) is announced above and below the
table, and each planned VM without results gets an error row (check vm,
error_kind incomplete).

Exit codes:
  0  the run finished (whatever its verdicts)
  2  bad input: a RUN that cannot be read
  3  the run is incomplete`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join("runs", "latest")
			if len(args) == 1 {
				path = args[0]
			}
			run, err := loadRun(path)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "run %s  accel %s  host %s\n\n", run.Run.ID, run.Run.Accel, run.Run.Host)
			if err := report.WriteSummary(w, run.Report); err != nil {
				return err
			}
			if note := report.IncompleteNote(run.Report); note != "" {
				return &exitError{code: results.ExitInfra, err: fmt.Errorf("%s is an incomplete run: %s", path, note)}
			}
			return nil
		},
	}
}

func newReportCompareCmd() *cobra.Command {
	var (
		threshold string
		timings   bool
	)
	cmd := &cobra.Command{
		Use:   "compare OLD NEW",
		Short: "Compare two runs: verdict changes, records added or removed, figures that moved",
		Long: `Compare two runs record by record (kernel, arch, check): verdicts that changed,
records added or removed, kernels rebuilt, and numbers in the records' details
that moved more than --threshold (flattened: details.types,
details.workload.p99_ms). Record durations and boot times are compared only
with --timings: they are noisy.

A regression is a verdict that got worse (pass < skip < fail < error), or a
figure known to be better lower (p99_ms, cpu_percent, duration_ms, …) or
higher (throughput, observed, …) that moved beyond the threshold the bad way.
Other figures (counts such as details.types) are reported, never failed.

A NEW run that did not finish (results.json says finished: false) is a
regression; the VMs it lacks are named. An OLD run that did not finish is
noted.

Exit codes:
  0  no regression
  1  a regression
  2  bad input: a RUN that cannot be read, a bad --threshold`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			th, err := report.ParseThreshold(threshold)
			if err != nil {
				return usagef("--threshold: %v", err)
			}
			old, err := loadRun(args[0])
			if err != nil {
				return err
			}
			cur, err := loadRun(args[1])
			if err != nil {
				return err
			}
			c := report.Compare(old.Report, cur.Report, report.CompareOptions{Threshold: th, Timings: timings})
			if err := c.Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			if n := c.Regressions(); n > 0 {
				return &exitError{code: results.ExitFail, err: fmt.Errorf("%d regression(s) from %s to %s", n, args[0], args[1])}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&threshold, "threshold", "5%", "report figures that moved more than this")
	cmd.Flags().BoolVar(&timings, "timings", false, "also compare duration_ms and boot_ms")
	return cmd
}

func newReportWriteCmd() *cobra.Command {
	var junit, html, markdown, baseline string
	cmd := &cobra.Command{
		Use:   "write RUN [--junit FILE] [--html FILE] [--markdown FILE [--baseline OLD]]",
		Short: "Write the JUnit XML, HTML or Markdown report of a past run",
		Long: `Write the JUnit XML, HTML or Markdown report of a past run.

--markdown writes GitHub-flavoured Markdown for a pull request comment or a
job summary: the verdict grid with each failure's reason, the failures by
reason with what to do, each failure's last log lines folded in <details>,
and with --baseline OLD the regressions and verifier complexity changes
against that run. It fits a comment (65,536 characters) by leaving parts out,
never by cutting a table.

For a run that did not finish (results.json says finished: false) the reports
say so (a banner in the HTML, an error testcase vmrunner/finished in JUnit,
an error per planned VM without results, a GitHub annotation) and a line on
stderr names the missing VMs; the exit code stays 0 when the files were
written.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if junit == "" && html == "" && markdown == "" {
				return usagef("report write: give --junit FILE, --html FILE and/or --markdown FILE")
			}
			if baseline != "" && markdown == "" {
				return usagef("report write: --baseline is for --markdown")
			}
			if err := checkOutputFiles(junit, html, markdown); err != nil {
				return err
			}
			run, err := loadRun(args[0])
			if err != nil {
				return err
			}
			if markdown != "" {
				opts := report.MarkdownOptions{}
				if baseline != "" {
					old, err := loadRun(baseline)
					if err != nil {
						return err
					}
					opts.Baseline = &old
				}
				if err := report.WriteMarkdownFile(markdown, run, opts); err != nil {
					return err
				}
			}
			if note := report.IncompleteNote(run.Report); note != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "vmrunner: %s is an incomplete run: %s\n", args[0], note)
			}
			return writeReports(run, junit, html, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&junit, "junit", "", "write JUnit XML to FILE")
	cmd.Flags().StringVar(&html, "html", "", "write the HTML report to FILE")
	cmd.Flags().StringVar(&markdown, "markdown", "", "write the Markdown report to FILE (pull requests, job summaries)")
	cmd.Flags().StringVar(&baseline, "baseline", "", "with --markdown: compare with this earlier run")
	return cmd
}

// loadRun reads a run; anything wrong with it is bad input (exit 2).
func loadRun(path string) (report.Run, error) {
	run, err := report.Load(path)
	if err != nil {
		return run, usageError{fmt.Errorf("%w (want a run directory or its results.json)", err)}
	}
	// An unfinished run that planned VMs may have no records yet: it is
	// shown as incomplete.
	if len(run.Results) == 0 && (!run.Incomplete() || len(run.Run.Targets) == 0) {
		return run, usagef("%s: the run has no results", path)
	}
	return run, nil
}

// checkOutputFiles refuses, before any VM boots, report files that could not
// be written.
func checkOutputFiles(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(filepath.Dir(p))
		if err != nil || !fi.IsDir() {
			return usagef("%s: directory %s does not exist (create it first)", p, filepath.Dir(p))
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return usagef("%s is a directory: give a file name", p)
		}
	}
	return nil
}

// writeReports writes the run's --junit and --html files, and under GitHub
// Actions the annotations (on w) and the job summary. (report.html in the run
// directory is written by the run itself.)
func writeReports(run report.Run, junit, html string, w io.Writer) error {
	var errs []error
	if html != "" {
		errs = append(errs, report.WriteHTMLFile(html, run))
	}
	if junit != "" {
		errs = append(errs, report.WriteJUnitFile(junit, run))
	}
	errs = append(errs, report.GitHub(os.Getenv, w, run))
	return errors.Join(errs...)
}
