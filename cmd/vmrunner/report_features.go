package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

func newReportFeaturesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features [RUN]",
		Short: "Print the feature × kernel grid of a run's features check (default runs/latest)",
		Long: `Print the features check of a past run as a grid: one row per program type,
map type and helper × program type, one column per kernel × arch, with the
upstream release that added each feature.

Exit codes:
  0  printed, nothing missing
  1  a feature is missing from a kernel at or past the release that added it
  2  bad input: a RUN that cannot be read or has no features results`,
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
			missing, err := report.WriteFeatureGrid(cmd.OutOrStdout(), run.Results)
			if err != nil {
				return usagef("%s: %v", path, err)
			}
			if missing > 0 {
				return &exitError{code: results.ExitFail}
			}
			return nil
		},
	}
}
