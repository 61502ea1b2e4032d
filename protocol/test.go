package protocol

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Guest paths of the test check (vmrunner exec, `test` in matrix.yaml).
const (
	// ShareRoot holds the host files packed for a program, one directory
	// per share; the agent binds each at its Target before the program
	// starts. Files under /tmp could not be packed at their own path: the
	// agent mounts a tmpfs there.
	ShareRoot = "/vmrunner/share"
	// TestHome is HOME for the program.
	TestHome = "/root"
	// TestPath is PATH for the program: the usual directories, where the
	// shell tools are.
	TestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Output formats of the test check.
const (
	FormatExit = "exit" // one result from the exit status
	FormatGo   = "go"   // one result per Go test, from -test.v=test2json output
)

// TestStopMargin is how long before its check's deadline (checkTimeout
// after it started) the guest stops a program that is still running: time
// for a task dump, the kill, and the result to reach the host before the
// agent's own watchdog reports the check as overrun.
func TestStopMargin(checkTimeout time.Duration) time.Duration {
	return min(15*time.Second, checkTimeout/4)
}

// TestCheckTimeout is the check timeout that gives a program run time
// before it is stopped: the inverse of TestStopMargin.
func TestCheckTimeout(run time.Duration) time.Duration {
	if run >= 45*time.Second {
		return run + 15*time.Second
	}
	return run * 4 / 3
}

// GoTestFlags follow the arguments of a program of format go: they make a
// Go test binary write what `go test -json` reads.
var GoTestFlags = []string{"-test.v=test2json", "-test.paniconexit0"}

// TestParams is the test check as the guest runs it: a program, with its
// argv passed as it is, in a working directory, with host files bound where
// the program expects them.
type TestParams struct {
	// Name is the result's name under the check: test/<Name>.
	Name string `json:"name,omitempty"`
	// Binary is the program's guest path (absolute).
	Binary string `json:"binary"`
	// Args follow Binary in argv, exactly (spaces and empty strings too).
	Args []string `json:"args,omitempty"`
	// Env are KEY=VALUE pairs added to the guest's environment (and
	// overriding it).
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; default /.
	Dir string `json:"dir,omitempty"`
	// Format says how the host turns the output into results.
	Format string `json:"format,omitempty"`
	// Binds are the packed host files, bound in order before the program
	// starts.
	Binds []Bind `json:"binds,omitempty"`
	// MaxOutput bounds the bytes of output sent to the host (both streams
	// together); later output is read, counted and dropped. 0 means
	// DefaultMaxOutput; NoOutputLimit sends it all.
	MaxOutput int64 `json:"max_output,omitempty"`
}

// DefaultMaxOutput is TestParams.MaxOutput when not set: what the host keeps
// of a test check's output in the run directory.
const DefaultMaxOutput = 64 << 20

// NoOutputLimit as TestParams.MaxOutput sends every byte (vmrunner exec,
// whose host passes the output on as it arrives): the channel's pace holds
// the program back, as a slow terminal would, and nothing is dropped.
const NoOutputLimit = -1

// Bind makes the packed file or directory Source (under ShareRoot) appear at
// Target.
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// reservedGuestPaths are where the guest's own files and file systems are:
// nothing is bound on or under them.
var reservedGuestPaths = []string{"/init", "/proc", "/sys", "/dev", "/vmrunner", "/etc/vmrunner", "/lib/modules"}

// CheckGuestPath says why p cannot be a place the test check binds a file or
// directory at, or returns nil: it must be clean and absolute, and neither
// / nor on or under the guest's own places (/proc, /sys, /dev, /init,
// /vmrunner, /etc/vmrunner, /lib/modules).
func CheckGuestPath(p string) error {
	switch {
	case !path.IsAbs(p):
		return fmt.Errorf("%q is not an absolute path", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path (use %s)", p, path.Clean(p))
	case p == "/":
		return fmt.Errorf("%q is the guest's root", p)
	case strings.ContainsAny(p, "\x00\n"):
		return fmt.Errorf("%q has a NUL or newline", p)
	}
	for _, r := range reservedGuestPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Errorf("%s is the guest's own (%s): nothing of the host may be placed there", p, r)
		}
	}
	return nil
}

// TestCheck is the "test" check: run the user's program in the guest
// (vmrunner exec runs it alone).
var TestCheck = declare("test", RunnerAgent, TestParams{Format: FormatExit})

// Validate implements paramsValidator: what the guest relies on.
func (p TestParams) Validate() []ParamProblem {
	var probs []ParamProblem
	bad := func(key, format string, args ...any) {
		probs = append(probs, ParamProblem{Key: []string{key}, Msg: key + ": " + fmt.Sprintf(format, args...)})
	}
	if !ValidTestName(p.Name) {
		bad("name", "%q: expected 1 to 64 of [A-Za-z0-9._-], not . or ..", p.Name)
	}
	switch {
	case p.Binary == "":
		probs = append(probs, ParamProblem{Key: []string{"binary"}, Msg: "missing binary: expected the program to run"})
	case !path.IsAbs(p.Binary) || path.Clean(p.Binary) != p.Binary:
		bad("binary", "%q: expected a clean absolute guest path", p.Binary)
	}
	if p.Dir != "" && (!path.IsAbs(p.Dir) || path.Clean(p.Dir) != p.Dir) {
		bad("dir", "%q: expected a clean absolute guest path", p.Dir)
	}
	probs = append(probs, oneOf("format", p.Format, []string{FormatGo, FormatExit})...)
	for _, e := range p.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			bad("env", "%q: expected KEY=VALUE", e)
		}
	}
	for _, b := range p.Binds {
		if !strings.HasPrefix(b.Source, ShareRoot+"/") || path.Clean(b.Source) != b.Source {
			bad("binds", "source %q: expected a clean path under %s", b.Source, ShareRoot)
		}
		if err := CheckGuestPath(b.Target); err != nil {
			bad("binds", "target: %v", err)
		}
	}
	if p.MaxOutput < NoOutputLimit {
		bad("max_output", "%d: expected 0 or more bytes, or %d for no limit", p.MaxOutput, NoOutputLimit)
	}
	return probs
}

// TestDetails is what the guest reports in the details of a test result.
type TestDetails struct {
	// ExitCode is the program's exit status as a shell reports it: 128+N
	// when signal N killed it; -1 when it did not start or did not end.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that killed it (SIGSEGV).
	Signal string `json:"signal,omitempty"`
	// StdoutBytes and StderrBytes count what it wrote, sent or not.
	StdoutBytes int64 `json:"stdout_bytes"`
	StderrBytes int64 `json:"stderr_bytes"`
	// Dropped counts bytes past MaxOutput, read and not sent.
	Dropped int64 `json:"dropped_bytes,omitempty"`
}

// ValidTestName reports whether name can be the one path segment a test
// result is named by under test/: 1 to 64 of [A-Za-z0-9._-], not . or ..
func ValidTestName(name string) bool {
	if name == "" || len(name) > 64 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
