package main

import (
	"github.com/vmrunner/vmrunner/internal/bench"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/internal/runner"
)

func newBenchCmd() *cobra.Command {
	var (
		f           runFlags
		boots       int
		matrixRuns  int
		watchObject string
		reloads     int
		only        []string
	)
	cmd := &cobra.Command{
		Use:   "bench [matrix.yaml]",
		Short: "Measure boot and restore time, whole-matrix wall time and peak RSS",
		Long: `Measure, in one run and with a warm cache:
  - matrix: the wall time of the whole matrix with every VM booted and with every
    VM restored from its snapshot, alternately (--matrix-runs rounds), their
    medians and ratio, where the time goes (phases summed over the VMs), and the
    peak RSS of the vmrunner process;
  - boot: per kernel × arch, the median time from QEMU start to the guest agent's
    ready, booted the vmrunner way (microvm + PVH vmlinux on x86_64, neoverse-n1 +
    raw Image on arm64) and the common way (-M pc / -M virt, compressed image,
    -cpu max), and restored from the VM's snapshot, with how long saving it kept
    the VM still and its size;
  - watch: per kernel × arch, repro --watch of --watch-object: the time from
    each reload (as Enter) to its verdict, and the guest's share of it.
It prints figures and the load average, and asserts nothing.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "matrix.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			log, err := newLogger(f.logLevel, nil)
			if err != nil {
				return err
			}
			for _, part := range only {
				if !slices.Contains(bench.Parts, part) {
					return usagef("--only %q: want one of %s", part, strings.Join(bench.Parts, ", "))
				}
			}
			accel, err := qemu.ParseAccel(f.accel)
			if err != nil {
				return usageError{err}
			}
			m, err := matrix.LoadMatrix(path)
			if err != nil {
				return err
			}
			return bench.Run(cmd.Context(), bench.Options{
				Options: runner.Options{Matrix: m, Parallel: f.parallel, Accel: accel,
					AgentDir: f.agentDir, CacheDir: f.cacheDir, Append: f.appendKC, Log: log},
				Boots: boots, MatrixRuns: matrixRuns, WatchObject: watchObject, Reloads: reloads, Only: only,
				Out: cmd.OutOrStdout(),
			})
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&boots, "boots", 5, "boots per kernel × arch and profile")
	fl.IntVar(&matrixRuns, "matrix-runs", 3, "rounds of the whole matrix, booted then restored")
	fl.StringVar(&watchObject, "watch-object", "testdata/bpf/probes.o", "BPF object for the repro --watch figures (\"\" for none)")
	fl.IntVar(&reloads, "reloads", 5, "repro --watch reloads per kernel × arch")
	fl.StringSliceVar(&only, "only", nil, "run only these parts: matrix, boot, watch (comma-separated)")
	fl.IntVar(&f.parallel, "parallel", 0, "VMs at once for the whole-matrix run (default: number of cores)")
	flagAccel(fl, &f.accel)
	flagAgentDir(fl, &f.agentDir)
	flagCacheDir(fl, &f.cacheDir)
	fl.StringArrayVar(&f.appendKC, "append", nil, "extra kernel command line word (repeatable)")
	flagLogLevel(fl, &f.logLevel)
	return cmd
}
