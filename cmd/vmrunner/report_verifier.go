package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

func newReportVerifierCmd() *cobra.Command {
	var (
		sortBy string
		growth string
	)
	cmd := &cobra.Command{
		Use:   "verifier [RUN [OLD]]",
		Short: "Print the verifier's figures per program × kernel, or compare them with an older run",
		Long: `Print the verifier check's figures of a run (default runs/latest) as
veristat does: one line per program × kernel with its verdict, the
instructions processed, their share of the kernel's limit (LIMIT%), total
and peak states, stack depth (frames added up), instructions in the object
and verification time. GROWTH is the change of instructions processed
from the program's base kernel: the first kernel of the matrix (in
version order) that processed it, on the same arch. --sort orders by any
column (numbers largest first). --growth-budget fails the command when a
program grew by more than that across the kernels.

With OLD, the two runs side by side (veristat's compare mode): each figure
in OLD (A) and RUN (B) and its change. --growth-budget fails the command
when a program's instructions processed grew by more than that from OLD.

Exit codes:
  0  printed, no program over --growth-budget
  1  a program grew more than --growth-budget
  2  bad input: a RUN without verifier results, a bad --sort or --growth-budget`,
		Args: usageArgs(cobra.MaximumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := report.CheckVerifierColumn(sortBy); err != nil {
				return usagef("--sort: %v", err)
			}
			var budget float64
			if growth != "" {
				var err error
				if budget, err = report.ParseThreshold(growth); err != nil {
					return usagef("--growth-budget: %v", err)
				}
			}
			path := filepath.Join("runs", "latest")
			if len(args) > 0 {
				path = args[0]
			}
			rows, err := verifierRows(path)
			if err != nil {
				return err
			}
			if len(args) < 2 {
				over, err := report.WriteVerifierTable(cmd.OutOrStdout(), rows, sortBy, budget)
				if err != nil {
					return err
				}
				if over > 0 {
					return &exitError{code: results.ExitFail, err: fmt.Errorf("%d program(s) grew more than %s across the run's kernels", over, growth)}
				}
				return nil
			}
			old, err := verifierRows(args[1])
			if err != nil {
				return err
			}
			over, err := report.WriteVerifierCompare(cmd.OutOrStdout(), report.CompareVerifier(old, rows), sortBy, budget)
			if err != nil {
				return err
			}
			if over > 0 {
				return &exitError{code: results.ExitFail, err: fmt.Errorf("%d program(s) grew more than %s from %s", over, growth, args[1])}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sortBy, "sort", "program", "order by this column: program, target, verdict, insns, limit, growth, states, peak, stack, size, time")
	cmd.Flags().StringVar(&growth, "growth-budget", "", "fail when a program's instructions processed grew more than this (e.g. 20%) from OLD, or without OLD from its base kernel")
	return cmd
}

func verifierRows(path string) ([]report.VerifierRow, error) {
	run, err := loadRun(path)
	if err != nil {
		return nil, err
	}
	rows, err := report.VerifierRows(run.Results)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return rows, nil
}
