package main

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

type runFlags struct {
	kernels  []string
	arches   []string
	checks   []string
	out      string
	parallel int
	accel    string
	agentDir string
	cacheDir string
	refresh  bool
	appendKC []string
	retries  int
	bootTO   time.Duration
	logLevel string
	junit    string
	html     string
	shard    string
	planHash string
	plan     planFlags
	noSnap   bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [matrix.yaml]",
		Short: "Boot every kernel × arch of a matrix and run its checks",
		Long: `Boot every kernel × arch of the matrix (default ./matrix.yaml) in parallel,
run the checks inside each VM, print a summary table and write
<out>/<run-id>/results.json, report.html, one console.log per VM and
<out>/latest.

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "matrix.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			return runMatrix(cmd, path, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.kernels, "kernel", nil, "run only this kernel (matrix name; repeatable)")
	fl.StringArrayVar(&f.arches, "arch", nil, "run only this arch: x86_64 or arm64 (repeatable)")
	fl.StringArrayVar(&f.checks, "check", nil, "run only this check (repeatable)")
	fl.StringVar(&f.out, "out", "runs", "directory of the run directories (a run-id directory and latest)")
	fl.IntVar(&f.parallel, "parallel", 0, "VMs to run at once (default: number of cores)")
	flagAccel(fl, &f.accel)
	flagAgentDir(fl, &f.agentDir)
	flagCacheDir(fl, &f.cacheDir)
	fl.BoolVar(&f.refresh, "refresh", false, "re-read mirror indexes instead of using resolutions cached for 24h")
	fl.StringArrayVar(&f.appendKC, "append", nil, "extra kernel command line word, e.g. --append nokaslr (repeatable)")
	flagBootTimeout(fl, &f.bootTO)
	flagRetries(fl, &f.retries)
	flagLogLevel(fl, &f.logLevel)
	fl.StringVar(&f.junit, "junit", "", "also write the results as JUnit XML to FILE")
	fl.StringVar(&f.html, "html", "", "also write the HTML report to FILE (report.html is always written in the run directory)")
	fl.StringVar(&f.shard, "shard", "", "run only shard I/N of the matrix's plan (see vmrunner plan; give the same --timings and --runner)")
	fl.StringVar(&f.planHash, "plan-hash", "", "with --shard: refuse unless the plan's hash is this one (the github format's \"plan\")")
	flagNoSnapshot(fl, &f.noSnap)
	f.plan.register(fl)
	return cmd
}

func runMatrix(cmd *cobra.Command, path string, f runFlags) error {
	if _, err := newLogger(f.logLevel, nil); err != nil {
		return err
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return usageError{err}
	}
	arches, err := parseArches(f.arches)
	if err != nil {
		return err
	}
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		return err
	}
	m, err = m.Select(f.kernels, arches, f.checks)
	if err != nil {
		return err
	}
	var shard *results.Shard
	if f.shard != "" {
		if m, shard, err = shardOf(m, f.shard, f.planHash, f.plan); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "shard %s of plan %.12s: %v\n", f.shard, shard.Plan, shard.Targets[shard.Index-1])
	} else if f.planHash != "" || f.plan.timings != "" || len(f.plan.runners) > 0 {
		return usagef("--plan-hash, --timings and --runner go with --shard I/N")
	}
	if err := checkOutputFiles(f.junit, f.html); err != nil {
		return err
	}
	warnBlocked(cmd, m, f.cacheDir, f.agentDir)
	start := time.Now()
	prog := newProgress(cmd.ErrOrStderr(), m.Targets())
	log, _ := newLogger(f.logLevel, prog.out)
	res, err := runner.Run(cmd.Context(), runner.Options{
		Matrix: m, OutDir: f.out, Parallel: f.parallel, Accel: accel, AgentDir: f.agentDir,
		CacheDir: f.cacheDir, Refresh: f.refresh, Append: f.appendKC, Retries: f.retries, BootTimeout: f.bootTO, Log: log,
		Progress: prog.update, Shard: shard, NoSnapshot: f.noSnap,
	})
	prog.wait()
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout())
	if err := report.WriteSummary(cmd.OutOrStdout(), res.Report); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "results: %s (%s)\n", filepath.Join(res.Dir, "results.json"), time.Since(start).Round(100*time.Millisecond))
	if err := writeReports(report.Run{Report: res.Report, Dir: res.Dir}, f.junit, f.html, cmd.OutOrStdout()); err != nil {
		if res.ExitCode == 0 {
			return &exitError{code: results.ExitInfra, err: err}
		}
		fmt.Fprintf(os.Stderr, "vmrunner: %v\n", err)
	}
	if res.Err != nil {
		fmt.Fprintf(os.Stderr, "\n%v\n", res.Err)
	}
	if res.ExitCode != 0 {
		return &exitError{code: res.ExitCode}
	}
	return nil
}

func tally(recs []results.Record) string {
	n := map[string]int{}
	for _, r := range recs {
		n[string(r.Status)]++
	}
	s := ""
	for _, k := range []string{"pass", "fail", "error", "skip"} {
		if n[k] > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%d %s", n[k], k)
		}
	}
	if s == "" {
		return "no results"
	}
	return s
}
