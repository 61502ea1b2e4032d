package main

import (
	"bytes"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/internal/vm"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/report"
	"github.com/vmrunner/vmrunner/results"
)

type execFlags struct {
	kernels  []string
	arches   []string
	matrix   string
	files    []string
	env      []string
	dir      string
	noDir    bool
	sysroot  string
	timeout  time.Duration
	maxDir   string
	out      string
	accel    string
	agentDir string
	cacheDir string
	retries  int
	bootTO   time.Duration
	logLevel string
	noSnap   bool
	memory   string
	cpus     int
	noEnv    bool
}

func newExecCmd() *cobra.Command {
	var f execFlags
	cmd := &cobra.Command{
		Use:   "exec [flags] -- PROGRAM [ARGS...]",
		Short: "Run a program in a VM of each kernel asked for, as go test -exec expects",
		Long: `Run PROGRAM with ARGS (passed exactly) as root in a VM of each kernel and
arch asked for, streaming its output, and exit with its exit status:

  go test -exec 'vmrunner exec --kernel 6.1 --' ./...
  GOARCH=arm64 go test -exec 'vmrunner exec --kernel 6.1 --' ./...
  vmrunner exec --kernel 5.10 --kernel 6.12 -- ./agent.test -test.v

The guest arch is the program's (its ELF header) unless --arch says it.
Kernel names are those of --matrix FILE, else $VMRUNNER_MATRIX, else the
built-in default matrix (Debian 5.10, 6.1, 6.12); without --kernel, every
kernel of it runs. The program gets the host's environment (but for PATH,
HOME, USER, TERM, TMPDIR and the like, the guest's own), then each --env;
--no-host-env passes none of it. The working directory (--dir, default the current one)
and each --file are copied into the guest at the same paths; the program's
writes there stay in the guest. Each VM is restored from the snapshot of its
kernel and arch when there is one, the files sent after it over the control
channel; --no-snapshot boots it, the files in a per-run archive.

With one VM the output is the program's, as it writes it, and the exit code
is its exit status (128+N when signal N killed it). With several, each line
is prefixed by its VM, a summary line per VM goes to stderr, and the exit
code is 0 only if every run exited 0, else 1. In both cases a VM that fails
(boot, timeout, kernel panic) is exit 3 and an interrupt 130, as for run.
Results (output, console.log) are kept in --out when given, otherwise only
when a VM failed.

` + exitCodesHelp,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // everything after PROGRAM is its own
	fl.StringArrayVar(&f.kernels, "kernel", nil, "run on this kernel (a name of the matrix; repeatable; default all of them)")
	fl.StringArrayVar(&f.arches, "arch", nil, "run on this arch: x86_64 or arm64 (default: the program's)")
	fl.StringVar(&f.matrix, "matrix", "", "matrix whose kernels --kernel names (default $"+matrix.MatrixEnv+", else the built-in default matrix)")
	fl.StringArrayVar(&f.files, "file", nil, "also copy HOST (a file or directory) into the guest, at GUEST or at the same path: HOST[:GUEST] (repeatable)")
	fl.StringArrayVar(&f.env, "env", nil, "set KEY=VALUE in the program's environment, over the host's (repeatable)")
	fl.BoolVar(&f.noEnv, "no-host-env", false, "pass none of the host's environment: the program gets the guest's PATH, HOME, USER, TERM and each --env")
	fl.StringVar(&f.dir, "dir", "", "working directory of the program, copied into the guest at the same path (default: the current directory)")
	fl.BoolVar(&f.noDir, "no-dir", false, "copy no working directory: the program runs in /")
	fl.StringVar(&f.sysroot, "sysroot", "", "directory holding the libraries of a dynamically linked program of another arch")
	fl.DurationVar(&f.timeout, "timeout", runner.DefaultExecTimeout, "stop the program after this long (with a task dump in console.log; exit 3)")
	fl.StringVar(&f.maxDir, "max-dir-size", "64M", "largest working directory (and --file directory) to copy into the guest")
	fl.IntVar(&f.cpus, "cpus", 0, "virtual CPUs of each VM (default: the matrix's, 1 in the built-in one)")
	fl.StringVar(&f.memory, "memory", "", "memory of each VM, like 1G or 768M (default: the matrix's, 512M in the built-in one)")
	fl.StringVar(&f.out, "out", "", "keep the results here (default: a temporary directory, kept only when a VM failed)")
	flagAccel(fl, &f.accel)
	flagAgentDir(fl, &f.agentDir)
	flagCacheDir(fl, &f.cacheDir)
	flagRetries(fl, &f.retries)
	flagBootTimeout(fl, &f.bootTO)
	flagLogLevel(fl, &f.logLevel)
	flagNoSnapshot(fl, &f.noSnap)
	return cmd
}

func runExec(cmd *cobra.Command, argv []string, f execFlags) error {
	log, err := newLogger(f.logLevel, cmd.ErrOrStderr())
	if err != nil {
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
	maxDir, err := parseSize(f.maxDir)
	if err != nil {
		return usagef("--max-dir-size: %v", err)
	}
	memMiB := 0
	if f.memory != "" {
		if memMiB, err = matrix.ParseMemory(f.memory); err != nil {
			return usagef("--memory: %v", err)
		}
	}
	if f.cpus < 0 || f.cpus > matrix.MaxCPUs || (f.cpus == 0 && cmd.Flags().Changed("cpus")) {
		return usagef("--cpus %d: expected a number of CPUs from 1 to %d", f.cpus, matrix.MaxCPUs)
	}
	if f.timeout <= 0 {
		return usagef("--timeout %s: expected a positive duration like 10m", f.timeout)
	}
	m, err := matrix.KernelMatrix(f.matrix)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" && !f.noDir {
		if dir, err = os.Getwd(); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	if f.noDir {
		dir = ""
	}

	out, keep := f.out, f.out != ""
	if !keep {
		if out, err = os.MkdirTemp("", "vmrunner-exec-"); err != nil {
			return fmt.Errorf("create results directory: %w", err)
		}
	}
	opts := runner.ExecOptions{
		Options: runner.Options{
			Matrix: m, OutDir: out, Accel: accel, AgentDir: f.agentDir, CacheDir: f.cacheDir,
			Retries: f.retries, BootTimeout: f.bootTO, Log: log, NoSnapshot: f.noSnap,
		},
		Kernels: f.kernels, Arches: arches, Program: argv[0], Args: argv[1:], Env: f.env, Dir: dir,
		Files: f.files, Sysroot: f.sysroot, Timeout: f.timeout, MaxDirBytes: maxDir,
		MemoryMiB: memMiB, CPUs: f.cpus,
	}
	if !f.noEnv {
		opts.HostEnv = os.Environ()
	}
	plan, err := runner.PlanExec(opts)
	if err != nil {
		if !keep {
			os.RemoveAll(out)
		}
		return err
	}
	targets := plan.Targets()
	w := newExecOutput(cmd.OutOrStdout(), cmd.ErrOrStderr(), len(targets) > 1)
	opts.Output = w.write
	res, err := runner.Exec(cmd.Context(), opts)
	w.flush()
	if err != nil {
		if !keep {
			os.RemoveAll(out)
		}
		return err
	}
	code := execExitCode(res)
	stderr := cmd.ErrOrStderr()
	failed := false
	for _, r := range res.Runs {
		if r.ExitCode < 0 || r.VMErr != nil {
			failed = true
		}
		switch {
		case len(res.Runs) > 1:
			fmt.Fprintf(stderr, "vmrunner exec: %s\n", execSummary(r))
		case r.ExitCode < 0:
			fmt.Fprintf(stderr, "vmrunner exec: %s\n", execSummary(r))
		case execHint(r) != "":
			// One VM: after the program's own output, one line when
			// that output says why it failed.
			fmt.Fprintf(stderr, "vmrunner exec: %s: %s\n", r.Target.Label(), execHint(r))
		}
		if r.Dropped > 0 {
			// Never a truncated log reported as ok (go test -exec).
			failed = true
			fmt.Fprintf(stderr, "vmrunner exec: %s: the guest dropped %d bytes of the program's output (program exit %d): exit 3\n",
				r.Target.Label(), r.Dropped, r.ExitCode)
		}
		if r.VMErr != nil && r.ExitCode >= 0 {
			// The program's status is known, and the VM still did not
			// end well: said, and exit 3.
			fmt.Fprintf(stderr, "vmrunner exec: %s: vm %s: %s\n", r.Target.Label(), r.VMErr.ErrorKind, text.SanitizeLine(text.OneLine(r.VMErr.Message, 300)))
		}
	}
	if failed || keep {
		keep = true
		for _, r := range res.Runs {
			if n := w.passed[r.Target.Label()]; n > vm.MaxSavedOutput {
				fmt.Fprintf(stderr, "vmrunner exec: %s: the results keep the first %d MiB of the program's %d bytes of output, all passed on\n",
					r.Target.Label(), vm.MaxSavedOutput>>20, n)
			}
		}
		fmt.Fprintf(stderr, "vmrunner exec: results in %s\n", res.Dir)
	}
	if !keep {
		os.RemoveAll(out)
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// execExitCode is exec's exit code: the program's with one VM, else 0 when
// every program exited 0 and 1 when one did not; a VM without an exit
// status, or with an error record of its own whatever the program's status
// (a panic after the program's result, no power-off, a protocol error), or
// whose program's output was cut (dropped past the bound), makes it 3 (130 when interrupted, 2 for bad input), as for run.
func execExitCode(res *runner.ExecResult) int {
	if res.ExitCode == results.ExitInterrupted {
		return results.ExitInterrupted
	}
	worst := 0
	for _, r := range res.Runs {
		if (r.VMErr != nil || r.Dropped > 0) && worst != results.ExitBadInput {
			worst = results.ExitInfra
		}
		if r.ExitCode < 0 {
			code := results.ExitInfra
			if r.Record.ErrorKind == results.KindBadInput {
				code = results.ExitBadInput
			}
			if worst != results.ExitBadInput {
				worst = code
			}
		}
	}
	if worst != 0 {
		return worst
	}
	if len(res.Runs) == 1 {
		return res.Runs[0].ExitCode
	}
	for _, r := range res.Runs {
		if r.ExitCode != 0 {
			return 1
		}
	}
	return 0
}

// execHint is the reason the program's output shows for its failure,
// labelled as the hint it is: "ATTACH_TARGET_MISSING (account_page_dirtied);
// hint, read from the program's output: <what to do>"; "" when it shows
// none.
func execHint(r runner.ExecRun) string {
	h := report.HintText(r.Record)
	if h == "" || r.ExitCode == 0 {
		return ""
	}
	code := string(r.Record.Reason)
	if r.Record.ReasonDetail != "" {
		code += " (" + text.SanitizeLine(text.OneLine(r.Record.ReasonDetail, 200)) + ")"
	}
	return code + "; " + h
}

// execSummary is one VM's line: its exit status, or why it has none.
func execSummary(r runner.ExecRun) string {
	rel := r.Record.KernelRelease
	if rel == "" {
		rel = "kernel not resolved"
	}
	took := time.Duration(r.Record.DurationMS) * time.Millisecond
	if r.ExitCode >= 0 {
		line := fmt.Sprintf("%s (%s): exit %d in %s", r.Target.Label(), rel, r.ExitCode, took.Round(10*time.Millisecond))
		if h := execHint(r); h != "" {
			line += ": " + h
		}
		return line
	}
	msg := r.Record.Message
	if r.Record.Status == "" {
		msg = "no result"
	}
	return fmt.Sprintf("%s (%s): %s %s: %s", r.Target.Label(), rel, r.Record.Status, r.Record.ErrorKind, msg)
}

// execOutput writes the programs' output: as it comes with one VM; with
// several, line by line, each prefixed by its VM. It holds at most
// maxPartialLine bytes per VM and stream, whatever the programs write.
type execOutput struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	prefix         bool
	partial        map[string]*bytes.Buffer // by VM and stream: a line not ended yet
	passed         map[string]int64         // by VM: bytes passed on
}

// maxPartialLine is the longest line held back to be prefixed whole: a
// longer one is written in pieces of this size, each on a line of its own.
const maxPartialLine = 64 << 10

func newExecOutput(stdout, stderr io.Writer, prefix bool) *execOutput {
	return &execOutput{stdout: stdout, stderr: stderr, prefix: prefix, partial: map[string]*bytes.Buffer{}, passed: map[string]int64{}}
}

func (w *execOutput) write(t matrix.Target, o protocol.Output) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.passed[t.Label()] += int64(len(o.Data))
	dst := w.stdout
	if o.Stream == protocol.Stderr {
		dst = w.stderr
	}
	if !w.prefix {
		_, _ = dst.Write(o.Data)
		return
	}
	key := t.Label() + " " + string(o.Stream)
	buf := w.partial[key]
	if buf == nil {
		buf = &bytes.Buffer{}
		w.partial[key] = buf
	}
	data := o.Data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// Keep the unfinished line for the next piece, up to
			// maxPartialLine.
			for len(data) > 0 {
				n := min(len(data), maxPartialLine-buf.Len())
				buf.Write(data[:n])
				data = data[n:]
				if buf.Len() == maxPartialLine {
					fmt.Fprintf(dst, "[%s] %s\n", t.Label(), buf.Bytes())
					buf.Reset()
				}
			}
			return
		}
		fmt.Fprintf(dst, "[%s] %s%s", t.Label(), buf.Bytes(), data[:i+1])
		buf.Reset()
		data = data[i+1:]
	}
}

// flush writes the lines that never ended.
func (w *execOutput) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, buf := range w.partial {
		if buf.Len() == 0 {
			continue
		}
		label, stream, _ := strings.Cut(key, " ")
		dst := w.stdout
		if stream == string(protocol.Stderr) {
			dst = w.stderr
		}
		fmt.Fprintf(dst, "[%s] %s\n", label, buf.Bytes())
		buf.Reset()
	}
}

// parseSize reads a size like 64M, 1G, 512MiB or 1048576 (bytes).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "IB"), "B")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: expected a size like 64M or 1G", s)
	}
	return n * mult, nil
}
