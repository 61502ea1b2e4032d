package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/plan"
	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

// planFlags are what a plan depends on besides the matrix and its lock:
// `vmrunner plan` and `vmrunner run --shard` take the same ones, so that
// both compute the same plan.
type planFlags struct {
	timings string
	runners []string
}

func (f *planFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.timings, "timings", "", "balance shards by the durations of a previous run (its results.json or run directory)")
	fl.StringArrayVar(&f.runners, "runner", nil, "runner label for an arch's shards, ARCH=LABEL, e.g. arm64=ubuntu-24.04-arm (repeatable; default "+plan.DefaultRunner+")")
}

// makePlan splits the targets of m into n shards.
func makePlan(m *matrix.Matrix, n int, f planFlags) (*plan.Plan, error) {
	in := plan.Input{Shards: n, Runners: map[string]string{}}
	for _, t := range m.Targets() {
		in.Targets = append(in.Targets, plan.Target{Kernel: t.Kernel.Name, Arch: string(t.Arch)})
	}
	for _, c := range m.Checks {
		in.Checks = append(in.Checks, c.Name)
	}
	for _, r := range f.runners {
		arch, label, ok := strings.Cut(r, "=")
		if _, err := kernels.ParseArch(arch); !ok || err != nil || label == "" {
			return nil, usagef("--runner %q: want ARCH=LABEL with ARCH x86_64 or arm64, e.g. arm64=ubuntu-24.04-arm", r)
		}
		in.Runners[arch] = label
	}
	if f.timings != "" {
		run, err := report.Load(f.timings)
		if err != nil {
			return nil, usagef("--timings: %v", err)
		}
		in.Costs = plan.Costs(run.Report)
	}
	var err error
	if in.MatrixHash, err = hashFile(m.Path); err != nil {
		return nil, err
	}
	if in.MatrixHash == "" {
		return nil, usagef("%s: no matrix file to plan", m.Path)
	}
	if in.LockHash, err = hashFile(kernels.LockPath(m.Path)); err != nil {
		return nil, err
	}
	p, err := plan.New(in)
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// hashFile is the SHA-256 of a file, "" when there is none.
func hashFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// shardOf narrows m to shard I/N of its plan and returns what results.json
// records of it. wantHash, when given, must be the plan's hash.
func shardOf(m *matrix.Matrix, shard, wantHash string, f planFlags) (*matrix.Matrix, *results.Shard, error) {
	i, n, err := plan.ParseShard(shard)
	if err != nil {
		return nil, nil, usagef("--shard: %v", err)
	}
	p, err := makePlan(m, n, f)
	if err != nil {
		return nil, nil, err
	}
	if wantHash != "" && wantHash != p.Hash {
		return nil, nil, usagef("--plan-hash %.12s: the plan here is %.12s; plan and run need the same matrix, lock file, selection, --timings and --runner", wantHash, p.Hash)
	}
	s, err := p.Shard(i, n)
	if err != nil {
		return nil, nil, usageError{err}
	}
	rec := &results.Shard{Index: i, Count: n, Plan: p.Hash, MatrixHash: p.MatrixHash, LockHash: p.LockHash, Checks: p.Checks}
	for _, sh := range p.Shards {
		var ts []results.Target
		for _, t := range sh.Targets {
			ts = append(ts, results.Target{Kernel: t.Kernel, Arch: t.Arch})
		}
		rec.Targets = append(rec.Targets, ts)
	}
	var labels []string
	for _, t := range s.Targets {
		labels = append(labels, t.String())
	}
	sm, err := m.OnlyTargets(labels)
	if err != nil {
		return nil, nil, err
	}
	return sm, rec, nil
}

func newPlanCmd() *cobra.Command {
	var (
		f                       planFlags
		shards                  int
		format                  string
		kernelSel, archSel, chk []string
	)
	cmd := &cobra.Command{
		Use:   "plan [matrix.yaml] --shards N",
		Short: "Split a matrix into shards for parallel CI jobs",
		Long: `Split the targets (kernel × arch) of the matrix (default ./matrix.yaml) into N
shards that CI jobs run in parallel with vmrunner run --shard I/N, and whose runs
vmrunner report merge puts back together.

Targets are placed longest first on the least loaded shard, by their durations in
a previous run with --timings, else by count. Targets whose arches want different
--runner labels never share a shard. The plan is deterministic: run --shard
computes it again from the same matrix, lock file, selection (--kernel, --arch,
--check), --timings and --runner, and records its hash in results.json.

--format text prints the shards and the expected makespan; --format github prints
one line of JSON for strategy.matrix:
  {"include":[{"index":1,"shard":"1/3","runner":"ubuntu-24.04","targets":["6.1/x86_64",...],"plan":"<hash>"},...]}

Exit codes: 0 planned, 2 bad input.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "github" {
				return usagef("--format %q: want text or github", format)
			}
			if shards < 1 {
				return usagef("--shards: give the number of shards, 1 or more")
			}
			m, err := loadSelected(matrixArg(args), kernelSel, archSel, chk)
			if err != nil {
				return err
			}
			p, err := makePlan(m, shards, f)
			if err != nil {
				return err
			}
			if format == "github" {
				b, err := p.GitHub()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			return p.WriteText(cmd.OutOrStdout(), f.timings)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&shards, "shards", 0, "number of shards (required)")
	fl.StringVar(&format, "format", "text", "text or github (JSON for strategy.matrix)")
	fl.StringArrayVar(&kernelSel, "kernel", nil, "plan only this kernel (matrix name; repeatable)")
	fl.StringArrayVar(&archSel, "arch", nil, "plan only this arch: x86_64 or arm64 (repeatable)")
	fl.StringArrayVar(&chk, "check", nil, "plan only this check (repeatable)")
	f.register(fl)
	return cmd
}

// parseArches parses repeated --arch values.
func parseArches(names []string) ([]kernels.Arch, error) {
	var arches []kernels.Arch
	for _, a := range names {
		pa, err := kernels.ParseArch(a)
		if err != nil {
			return nil, usagef("--arch: %v", err)
		}
		arches = append(arches, pa)
	}
	return arches, nil
}

// loadSelected loads a matrix and applies run's --kernel, --arch and --check.
func loadSelected(path string, kernelSel, archSel, checks []string) (*matrix.Matrix, error) {
	arches, err := parseArches(archSel)
	if err != nil {
		return nil, err
	}
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		return nil, err
	}
	return m.Select(kernelSel, arches, checks)
}
