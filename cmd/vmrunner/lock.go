package main

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/kernels"
)

func newLockCmd() *cobra.Command {
	var (
		cacheDir, logLevel string
		refresh            bool
	)
	cmd := &cobra.Command{
		Use:   "lock [matrix.yaml]",
		Short: "Resolve every kernel of a matrix and pin it in matrix.lock",
		Long: `Resolve every kernel × arch of the matrix (downloading what is missing) and write
<matrix>.lock next to it: the Debian package, version, .deb URL and SHA-256; the OCI
manifest digest; the Ubuntu mainline and deb URLs with their SHA-256; the SHA-256 of
local files. vmrunner run then boots exactly these kernels, and warns when the matrix
changed since the lock was written.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			path := matrixArg(args)
			m, err := matrix.LoadMatrix(path)
			if err != nil {
				return err
			}
			c, err := kernels.OpenCache(cacheDir)
			if err != nil {
				return err
			}
			lock, err := kernels.Lock(cmd.Context(), m.LockKernels(), kernels.Options{Cache: c, Refresh: refresh, Logger: log})
			if err != nil {
				return kernelError(err)
			}
			out := kernels.LockPath(path)
			if err := lock.Write(out); err != nil {
				return err
			}
			for _, k := range lock.Kernels {
				fmt.Fprintf(cmd.OutOrStdout(), "%-20s %-28s %s\n", k.Name+"/"+string(k.Arch), k.Release, describeOrigin(k.Pin))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d kernels)\n", out, len(lock.Kernels))
			return nil
		},
	}
	fl := cmd.Flags()
	flagCacheDir(fl, &cacheDir)
	flagLogLevel(fl, &logLevel)
	fl.BoolVar(&refresh, "refresh", false, "re-read mirror indexes and tags instead of using cached resolutions")
	return cmd
}
