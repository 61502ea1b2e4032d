package main

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
)

type reproFlags struct {
	matrix, kernel, arch, object, program string
	shell, watch                          bool
	out, accel, agentDir, cacheDir        string
	logLevel                              string
	noSnap                                bool
}

func newReproCmd() *cobra.Command {
	var f reproFlags
	cmd := &cobra.Command{
		Use:   "repro --kernel NAME --arch ARCH --object FILE [--program NAME] [--shell | --watch]",
		Short: "Boot one kernel, load one BPF program with the full verifier log, print it",
		Long: `Boot only the VM of one kernel of the matrix on one arch, load the program
(or every program of the object) with the most detailed verifier log
(instruction, branch and statistics levels), print the log on stdout as the
kernel wrote it and save it under <out>/<run-id>/<kernel>-<arch>/verifier/.

With --watch, keep the VM up: each time the object changes (or Enter is
pressed) load it again and print the new logs and verdicts; Ctrl-C ends the
watch, powers the VM off and saves the run with the last load's results.

With --shell, boot the same VM with u-root's shell (gosh) and ls, cat, dmesg,
mount and ip under /bin, the object under /vmrunner/objects/, and the console
on this terminal; leaving the shell (exit, Ctrl-D) powers the VM off.

Exit codes:
  0  every program loaded (or the shell ended); with --watch, at the last load
  1  a program was rejected by the verifier (with --watch, at the last load)
  2  bad input: unknown kernel or arch, an object that is not a BPF ELF file,
     no such program
  3  infrastructure: QEMU, boot, timeout, panic`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRepro(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.matrix, "matrix", "matrix.yaml", "matrix file the kernel is defined in")
	fl.StringVar(&f.kernel, "kernel", "", "kernel name from the matrix (required)")
	fl.StringVar(&f.arch, "arch", string(kernels.Host()), "x86_64 or arm64")
	fl.StringVar(&f.object, "object", "", "BPF ELF object to load (required)")
	fl.StringVar(&f.program, "program", "", "only this program of the object")
	fl.BoolVar(&f.shell, "shell", false, "open an interactive shell in the VM instead of loading")
	fl.BoolVar(&f.watch, "watch", false, "keep the VM up and load the object again whenever it changes or Enter is pressed")
	fl.StringVar(&f.out, "out", "runs", "directory of the run directories (a run-id directory and latest)")
	flagAccel(fl, &f.accel)
	flagAgentDir(fl, &f.agentDir)
	flagCacheDir(fl, &f.cacheDir)
	flagLogLevel(fl, &f.logLevel)
	flagNoSnapshot(fl, &f.noSnap)
	return cmd
}

func runRepro(cmd *cobra.Command, f reproFlags) error {
	log, err := newLogger(f.logLevel, nil)
	if err != nil {
		return err
	}
	if f.kernel == "" {
		return usagef("--kernel is required: name a kernel of %s", f.matrix)
	}
	if f.object == "" && !f.shell {
		return usagef("--object is required: the BPF object to load")
	}
	if f.shell && f.watch {
		return usagef("--shell and --watch do not go together")
	}
	if f.object != "" {
		// A regular file of a bounded size only: a FIFO or a device is
		// refused without being opened for a blocking read.
		if _, err := inputfile.Check(f.object, initramfs.MaxFileSize); err != nil {
			return usagef("--object: %v", err)
		}
	}
	arch, err := kernels.ParseArch(f.arch)
	if err != nil {
		return usagef("--arch: %v", err)
	}
	accel, err := qemu.ParseAccel(f.accel)
	if err != nil {
		return usageError{err}
	}
	m, err := matrix.LoadMatrix(f.matrix)
	if err != nil {
		return err
	}
	m, err = m.Select([]string{f.kernel}, []kernels.Arch{arch}, nil)
	if err != nil {
		return err
	}
	opts := runner.Options{Matrix: m, OutDir: f.out, Parallel: 1, Accel: accel, AgentDir: f.agentDir, CacheDir: f.cacheDir, Log: log, NoSnapshot: f.noSnap}

	if f.shell {
		err := runner.Shell(cmd.Context(), runner.ShellOptions{Options: opts, Object: f.object})
		if err != nil {
			return err
		}
		return nil
	}

	start := time.Now()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ro := runner.ReproOptions{Options: opts, Object: f.object, Program: f.program}
	if f.watch {
		res, err := runner.ReproWatch(cmd.Context(), runner.WatchOptions{ReproOptions: ro, Keys: cmd.InOrStdin(), Logs: out, Verdicts: errOut})
		if err != nil {
			return err
		}
		fmt.Fprintf(errOut, "watch ended; results: %s (%s)\n", filepath.Join(res.Dir, "results.json"), time.Since(start).Round(100*time.Millisecond))
		if res.Err != nil {
			fmt.Fprintf(errOut, "%v\n", res.Err)
		}
		if res.ExitCode != 0 {
			return &exitError{code: res.ExitCode}
		}
		return nil
	}
	res, err := runner.Repro(cmd.Context(), ro)
	if err != nil {
		return err
	}
	for i, r := range res.Records {
		if res.Logs[i] != "" {
			b, err := os.ReadFile(res.Logs[i])
			if err != nil {
				return &exitError{code: results.ExitInfra, err: fmt.Errorf("read verifier log: %w", err)}
			}
			_, _ = out.Write(b)
		}
		fmt.Fprintf(errOut, "%s on %s/%s: %s: %s\n", r.Check, r.Kernel, r.Arch, r.Status, r.Message)
	}
	fmt.Fprintf(errOut, "results: %s (%s)\n", filepath.Join(res.Dir, "results.json"), time.Since(start).Round(100*time.Millisecond))
	if res.Err != nil {
		fmt.Fprintf(errOut, "%v\n", res.Err)
	}
	if res.ExitCode != 0 {
		return &exitError{code: res.ExitCode}
	}
	return nil
}
