package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// ReproOptions say which program to reproduce on which VM. Options.Matrix
// must hold exactly one target; its checks are replaced by one verifier
// check of Object.
type ReproOptions struct {
	Options
	Object  string // BPF ELF object on the host
	Program string // optional: only this program of Object
}

// ReproResult is what the verifier said on the one VM.
type ReproResult struct {
	*Result
	// Records are the verifier results, one per program.
	Records []results.Record
	// Logs are the programs' verifier logs as saved under the run
	// directory, in Records order ("" when none was saved).
	Logs []string
}

// Repro boots one VM and loads only the program (or every program of the
// object) with the most detailed verifier log, even when it loads. The
// object is checked on the host first: not an ELF BPF object, or no such
// program, is bad input (ErrBadMatrix) and boots nothing.
//
// Exit codes: results.ExitOK when every program loaded, results.ExitFail
// when one was rejected, results.ExitBadInput when the guest could not read
// the object, results.ExitInfra when the VM did not report.
func Repro(ctx context.Context, opts ReproOptions) (*ReproResult, error) {
	m, err := reproMatrix(opts)
	if err != nil {
		return nil, err
	}
	opts.Matrix = m
	return repro(ctx, opts)
}

// reproMatrix checks the object on the host and returns opts.Matrix with
// its checks replaced by one verifier check of it.
func reproMatrix(opts ReproOptions) (*matrix.Matrix, error) {
	if n := len(opts.Matrix.Targets()); n != 1 {
		return nil, fmt.Errorf("%w: repro boots one VM, the selection has %d", matrix.ErrBadMatrix, n)
	}
	if _, err := inputfile.Check(opts.Object, matrix.MaxObjectFile); err != nil {
		return nil, badInputf("--object: %v", err)
	}
	spec, err := matrix.LoadObjectSpec(opts.Object)
	if err != nil {
		return nil, badInputf("read object: %v (want an ELF object built with clang -target bpf)", err)
	}
	var names []string
	for name := range spec.Programs {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, badInputf("%s has no programs", opts.Object)
	}
	params := protocol.VerifierParams{
		Objects:   []protocol.VerifierObject{{Path: path.Join(matrix.GuestObjectDir, filepath.Base(opts.Object))}},
		LogAlways: true,
	}
	if opts.Program != "" {
		if !slices.Contains(names, opts.Program) {
			return nil, badInputf("no program %q in %s; it has: %s", opts.Program, opts.Object, strings.Join(names, ", "))
		}
		params.Programs = []string{opts.Program}
	}
	js, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	m := *opts.Matrix
	m.Checks = []matrix.Check{{
		Name: "verifier", Params: js, Timeout: m.Defaults.CheckTimeout,
		Files: []matrix.GuestFile{{Host: opts.Object, Guest: params.Objects[0].Path, Named: true}},
	}}
	return &m, nil
}

// repro runs the matrix reproMatrix made and reads what the verifier said.
func repro(ctx context.Context, opts ReproOptions) (*ReproResult, error) {
	res, err := Run(ctx, opts.Options)
	if err != nil {
		return nil, err
	}
	out := &ReproResult{Result: res}
	for _, r := range res.Report.Results {
		out.Records = append(out.Records, r)
		log := ""
		for _, a := range r.Artifacts {
			if strings.HasSuffix(a, ".log") {
				log = filepath.Join(res.Dir, a)
			}
		}
		out.Logs = append(out.Logs, log)
	}
	out.ExitCode = reproExitCode(out.Records, ctx.Err() != nil)
	return out, nil
}

// reproExitCode: infrastructure first, then an object the guest could not
// load at all, then rejections.
func reproExitCode(recs []results.Record, interrupted bool) int {
	if interrupted {
		return results.ExitInterrupted
	}
	code := results.ExitOK
	for _, r := range recs {
		var d protocol.VerifierDetails
		_ = json.Unmarshal(r.Details, &d)
		guestError := r.ErrorKind == results.KindCheck || r.ErrorKind == results.KindLoad
		switch {
		case r.Status == protocol.StatusError && !guestError:
			return results.ExitInfra
		case r.Status == protocol.StatusError:
			code = results.ExitBadInput
		case d.Program == "":
			// the object's own record (verifier/<object>): its loader steps
		case !d.Loaded && code == results.ExitOK:
			code = results.ExitFail
		}
	}
	if len(recs) == 0 {
		return results.ExitInfra
	}
	return code
}

// ErrNoShellTools is returned when the guest shell binaries are missing.
var ErrNoShellTools = errors.New("guest shell tools not found")

// ShellTools are the u-root commands put under /bin for repro --shell.
var ShellTools = []string{"gosh", "ls", "cat", "dmesg", "mount", "ip"}

// ShellToolsDir is where FindShellTools looks for arch's tools: the
// directory vmrunner-tools-<arch> beside the agents.
func ShellToolsDir(agentDir string, a string) string {
	return filepath.Join(agentDir, "vmrunner-tools-"+a)
}

func findShellTools(agent string, a string) ([]matrix.GuestFile, error) {
	dir := ShellToolsDir(filepath.Dir(agent), a)
	var files []matrix.GuestFile
	for _, t := range ShellTools {
		p := filepath.Join(dir, t)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %s: run `make build` (it builds them beside the agents)", ErrNoShellTools, p)
		}
		files = append(files, matrix.GuestFile{Host: p, Guest: "/bin/" + t, Exec: true})
	}
	return files, nil
}

// badInputError is a problem with what the user gave repro; it matches
// ErrBadMatrix (exit code 2) without saying "bad matrix".
type badInputError struct{ msg string }

func (e *badInputError) Error() string        { return e.msg }
func (e *badInputError) Is(target error) bool { return target == matrix.ErrBadMatrix }

func badInputf(format string, args ...any) error {
	return &badInputError{fmt.Sprintf(format, args...)}
}
