package main

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/version"

	"github.com/spf13/cobra"
)

const exitCodesHelp = `Exit codes:
  0    every check passed
  1    a check failed, or a BPF object could not be loaded (error_kind load)
  2    bad input: matrix.yaml, a flag, or a kernel source that does not exist
  3    infrastructure: QEMU missing or failing, download trouble, boot failure,
       timeout, kernel panic, guest agent crash
  130  interrupted (SIGINT/SIGTERM)`

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vmrunner",
		Short:         "Run eBPF checks on real Linux kernels in QEMU microVMs",
		Long:          "vmrunner boots every kernel × arch of a matrix in QEMU, runs BTF and eBPF checks inside each VM and reports the results.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newRunCmd(), newExecCmd(), newBenchCmd(), newVersionCmd())
	root.AddCommand(newReportCmd(), newPlanCmd())
	root.AddCommand(newReproCmd())
	root.AddCommand(newKernelsCmd(), newLockCmd(), newDoctorCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the vmrunner version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "vmrunner", version.Version)
			return err
		},
	}
}

// usageArgs makes a wrong number of arguments bad input (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usagef("%s: %v (usage: %s)", cmd.CommandPath(), err, cmd.UseLine())
		}
		return nil
	}
}
