package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/program"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// DefaultExecTimeout is how long vmrunner exec lets a program run: longer
// than go test's own -test.timeout (10m), so that a Go test's timeout is
// the test binary's to report.
const DefaultExecTimeout = 20 * time.Minute

// ExecOptions configure Exec: one program run on kernels of a matrix.
type ExecOptions struct {
	// Options are the run's: Matrix (its kernels and defaults; its checks
	// are not run), OutDir, Accel, CacheDir, AgentDir, Retries, Log ….
	Options
	// Kernels and Arches narrow the matrix; no Arches means the program's.
	Kernels []string
	Arches  []kernels.Arch
	// Program and Args are the argv, passed to the guest exactly.
	Program string
	Args    []string
	// Env are KEY=VALUE pairs for the program, over HostEnv's.
	Env []string
	// HostEnv is the host's environment (os.Environ), passed to the
	// program but for the variables the guest sets itself (hostEnv); nil
	// passes none.
	HostEnv []string
	// Dir is the directory the program runs in, packed and bound at its
	// own path ("" for none: the program runs in /).
	Dir string
	// Files are more host files or directories to pack, HOST or
	// HOST:GUEST (GUEST defaults to HOST's absolute path).
	Files []string
	// Sysroot holds the libraries of a dynamic program of another arch.
	Sysroot string
	// Timeout bounds the program; default DefaultExecTimeout.
	Timeout time.Duration
	// MaxDirBytes bounds Dir; default DefaultMaxDirBytes.
	MaxDirBytes int64
	// MemoryMiB and CPUs, when not zero, are every VM's shape, over the
	// matrix's defaults and its kernels' own: a snapshot is kept per shape.
	MemoryMiB, CPUs int
}

// fileAdvice is a --file HOST:GUEST that places host where the guest has
// room: under /tmp, by its name when that name can be a guest path, and
// never the refused place itself. Quoted as Go would when the name holds
// what a terminal would not show as it is.
func fileAdvice(host, abs, refused string) string {
	place := "/tmp/" + filepath.Base(abs)
	if protocol.CheckGuestPath(place) != nil || place == refused {
		place = "/tmp/file"
	}
	arg := host + ":" + place
	if strconv.Quote(arg) != `"`+arg+`"` || strings.ContainsAny(arg, " '\"$`") {
		return strconv.Quote(arg)
	}
	return arg
}

// ExecRun is what became of the program on one target.
type ExecRun struct {
	Target matrix.Target
	// Record is the program's result, test/<name>; an error record when the
	// VM failed before the program ended.
	Record results.Record
	// ExitCode is the program's exit status as a shell reports it (128+N
	// for signal N), or -1 when it has none (Record says why).
	ExitCode int
	// VMErr is the VM's own error record (check "vm": no done, no clean
	// power-off, a protocol error after the program's result), or nil:
	// whatever the program's status, the VM did not end well.
	VMErr *results.Record
	// Dropped is how many bytes of the program's output the guest says it
	// read and did not send (none: Exec asks it for all of it).
	Dropped int64
}

// ExecResult is the outcome of Exec.
type ExecResult struct {
	*Result
	Runs []ExecRun
}

// PlanExec checks everything Exec is given, before any VM boots, and
// returns the matrix it runs: the program's arch (from its ELF header),
// the kernels asked for, one test check. Bad input is an error matching
// ErrBadMatrix (exit code 2), naming the problem and the fix.
func PlanExec(opts ExecOptions) (*matrix.Matrix, error) {
	bad := func(err error) error { return &badInputError{err.Error()} }
	if opts.Matrix == nil {
		return nil, errors.New("exec: no matrix")
	}
	var want kernels.Arch
	if len(opts.Arches) > 0 {
		want = opts.Arches[0]
	}
	p, err := program.Inspect(opts.Program, program.Options{Arch: want, Sysroot: opts.Sysroot})
	if err != nil {
		return nil, bad(err)
	}
	for _, a := range opts.Arches[min(1, len(opts.Arches)):] {
		if a != p.Arch {
			return nil, badInputf("program %s: it is %s, so it cannot run on --arch %s: build it for %s too (GOARCH=%s) and run it once per arch",
				opts.Program, p.Arch, a, a, a.GOARCH())
		}
	}
	m, err := opts.Matrix.Select(opts.Kernels, []kernels.Arch{p.Arch}, nil)
	if err != nil {
		return nil, err
	}
	for i := range m.Kernels {
		m.Kernels[i].MemoryMiB = cmp.Or(opts.MemoryMiB, m.Kernels[i].MemoryMiB)
		m.Kernels[i].CPUs = cmp.Or(opts.CPUs, m.Kernels[i].CPUs)
	}
	sh := &matrix.Shares{}
	if err := sh.AddProgram(p); err != nil {
		return nil, bad(err)
	}
	dir := ""
	if opts.Dir != "" {
		if dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, bad(fmt.Errorf("dir %s: %w", opts.Dir, err))
		}
		if err := protocol.CheckGuestPath(matrix.GuestDir(dir)); err != nil {
			return nil, badInputf("working directory %s cannot be shared with the guest: %v; run from a directory of your own, or give --dir DIR (--dir= for none)", dir, err)
		}
		if err := sh.AddDir(dir, matrix.GuestDir(dir), cmp.Or(opts.MaxDirBytes, matrix.DefaultMaxDirBytes)); err != nil {
			return nil, bad(err)
		}
	}
	for _, f := range opts.Files {
		host, guest, _ := strings.Cut(f, ":")
		abs, err := filepath.Abs(host)
		if err != nil {
			return nil, badInputf("--file %q: %v", f, err)
		}
		if guest == "" {
			guest = matrix.GuestDir(abs)
		}
		if err := protocol.CheckGuestPath(guest); err != nil {
			return nil, badInputf("--file %q: %v: give it a place of your own, like --file %s", f, err, fileAdvice(host, abs, guest))
		}
		fi, err := os.Stat(abs)
		switch {
		case err != nil:
			return nil, badInputf("--file %q: %v", f, err)
		case fi.IsDir():
			err = sh.AddDir(abs, guest, cmp.Or(opts.MaxDirBytes, matrix.DefaultMaxDirBytes))
		default:
			err = sh.AddFile(abs, guest, false)
		}
		if err != nil {
			return nil, badInputf("--file %s: %v", f, err)
		}
	}
	for _, e := range opts.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, badInputf("--env %q: expected KEY=VALUE", e)
		}
	}
	env, err := hostEnv(opts.HostEnv)
	if err != nil {
		return nil, err
	}
	// The guest applies them in order: --env over the host's.
	env = append(env, opts.Env...)
	timeout := cmp.Or(opts.Timeout, DefaultExecTimeout)
	// All of the output is sent, and passed on as it comes (Output).
	params := protocol.TestParams{Name: matrix.TestName(filepath.Base(p.Path)), Binary: p.Path, Args: opts.Args, Env: env,
		Dir: guestDirOrEmpty(dir), Format: protocol.FormatExit, Binds: sh.Binds, MaxOutput: protocol.NoOutputLimit}
	if probs := params.Validate(); len(probs) > 0 {
		return nil, badInputf("%s", probs[0].Msg)
	}
	js, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode test params: %w", err)
	}
	// The guest stops the program a little before the check's deadline,
	// after a task dump: the check's timeout leaves it that margin.
	check := matrix.Check{Name: protocol.TestCheck.Name(), Params: js, Timeout: protocol.TestCheckTimeout(timeout),
		ByArch: map[kernels.Arch]matrix.ArchCheck{p.Arch: {Params: js, Shares: sh}}}
	m.Checks = []matrix.Check{check}
	// The VM gets the boot, the program and the power-off.
	m.Defaults.Timeout = max(m.Defaults.Timeout, check.Timeout+3*time.Minute)
	return m, nil
}

func guestDirOrEmpty(dir string) string {
	if dir == "" {
		return ""
	}
	return matrix.GuestDir(dir)
}

// Exec runs a program on each target of PlanExec's matrix, as the test
// check does (watchdogs, retries, records, results directory), and reports
// each run's exit status. opts.Output receives the program's whole output
// as it arrives, one message (at most protocol.MaxOutputChunk bytes) at a
// time: the guest waits while it runs, so a slow Output holds the program
// back and the host's memory stays bounded. The results directory keeps
// its first vm.MaxSavedOutput bytes.
func Exec(ctx context.Context, opts ExecOptions) (*ExecResult, error) {
	m, err := PlanExec(opts)
	if err != nil {
		return nil, err
	}
	ro := opts.Options
	ro.Matrix = m
	if ro.Extra == nil {
		// The shell tools on PATH, when they were built.
		ro.Extra = func(agent string, a kernels.Arch) ([]matrix.GuestFile, error) {
			tools, err := findShellTools(agent, string(a))
			if err != nil {
				ro.Log.Debug("no shell tools in the guest", "err", err)
				return nil, nil
			}
			return tools, nil
		}
	}
	if ro.Log == nil {
		ro.Log = discardLogger()
	}
	res, err := Run(ctx, ro)
	if err != nil {
		return nil, err
	}
	out := &ExecResult{Result: res}
	var p protocol.TestParams
	_ = json.Unmarshal(m.Checks[0].Params, &p)
	name := "test/" + p.Name
	for _, t := range m.Targets() {
		run := ExecRun{Target: t, ExitCode: -1}
		for _, r := range res.Report.Results {
			if r.Kernel != t.Kernel.Name || r.Arch != string(t.Arch) {
				continue
			}
			if r.Check == name || (r.Check == protocol.TestCheck.Name() && run.Record.Check == "") {
				run.Record = r
			}
			if r.Check == results.VMCheck && r.Status == protocol.StatusError && run.VMErr == nil {
				run.VMErr = &r
			}
		}
		var d protocol.TestDetails
		if run.Record.Check == name && run.Record.Status != protocol.StatusError && json.Unmarshal(run.Record.Details, &d) == nil {
			run.ExitCode, run.Dropped = d.ExitCode, d.Dropped
		}
		out.Runs = append(out.Runs, run)
	}
	return out, nil
}
