package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/protocol"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/spelling"
	"github.com/vmrunner/vmrunner/kernels"
)

// Defaults applied when matrix.yaml does not say otherwise.
const (
	defaultMemoryMiB    = 512
	defaultCPUs         = 1
	defaultTimeout      = 10 * time.Minute
	defaultCheckTimeout = 5 * time.Minute
)

// ErrBadMatrix is wrapped by every error about the content of a matrix or a
// selection from it: the user can fix it.
var ErrBadMatrix = errors.New("bad matrix")

// MatrixError is a problem in a matrix file, at a position when Line is not
// zero. It matches ErrBadMatrix with errors.Is.
type MatrixError struct {
	File      string
	Line, Col int
	Msg       string
}

// Error returns "FILE:LINE:COL: MSG", or "FILE: MSG" without a position.
func (e *MatrixError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d", e.Line, max(e.Col, 1))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrBadMatrix) true.
func (e *MatrixError) Is(target error) bool { return target == ErrBadMatrix }

// Matrix is a parsed matrix.yaml: the kernels to boot, on which
// architectures, and the checks to run in every VM.
type Matrix struct {
	Path     string // file it was read from
	Defaults Defaults
	Kernels  []KernelEntry
	Checks   []Check
}

// Defaults are the VM settings of every kernel that does not override them.
type Defaults struct {
	MemoryMiB    int           // "memory": 512M, 1G, 768MiB; default 512
	CPUs         int           // "cpus"; default 1
	Timeout      time.Duration // "timeout", per VM; default 10m
	CheckTimeout time.Duration // "check_timeout", per check; default 5m
	// NoSnapshot ("snapshot: false") boots every VM: no VM is restored
	// from a snapshot or saved as one (see snapshot.go).
	NoSnapshot bool
}

// KernelEntry is one kernel of the matrix.
type KernelEntry struct {
	// Name identifies the kernel on the command line and in results; it is
	// safe as a directory name ([A-Za-z0-9._-], not "." or "..").
	Name string
	// Arch lists the architectures to boot it on, in matrix order.
	// matrix.yaml may omit it (all of kernels.Arches) or give one scalar.
	Arch   []kernels.Arch
	Source kernels.Spec // exactly one kind is set
	// MemoryMiB and CPUs override the defaults when not zero.
	MemoryMiB, CPUs int
}

// Check is one check to run in every VM.
type Check struct {
	Name string
	// Params are the check's parameters as JSON for the guest, encoded from
	// the check's parameter type; nil when matrix.yaml gives none.
	Params json.RawMessage
	// Timeout is the "timeout" given among the parameters, or else
	// Defaults.CheckTimeout. It is never part of Params.
	Timeout time.Duration
	// Files are host files the check needs in the guest (verifier objects).
	Files []GuestFile
	// ByArch, when set, replaces Params for the targets of each arch it
	// has, with files packed for them per run (the test check: a program is
	// built for one arch). On targets of an arch it lacks, the check is
	// skipped: its record is named SkipAs (default Name) and says
	// OtherArch.
	ByArch    map[kernels.Arch]ArchCheck
	SkipAs    string
	OtherArch string
	// Modules are kernel modules the check loads itself (a verifier
	// object's modules): packed with their dependencies, not loaded at boot.
	Modules []string
}

// Target is one VM to run: a kernel on one architecture.
type Target struct {
	Kernel KernelEntry
	Arch   kernels.Arch
}

// Targets expands kernels × arches in matrix order: every arch of the first
// kernel, then of the second, and so on.
func (m *Matrix) Targets() []Target {
	var ts []Target
	for _, k := range m.Kernels {
		for _, a := range k.Arch {
			ts = append(ts, Target{k, a})
		}
	}
	return ts
}

// Select returns the part of the matrix named by kernel names, arches and
// check names; an empty filter keeps everything. m is not modified.
//
// Naming a kernel, arch or check the matrix does not have, or filters that
// together leave no target, is an error wrapping ErrBadMatrix that lists what
// the matrix has.
func (m *Matrix) Select(names []string, arches []kernels.Arch, checks []string) (*Matrix, error) {
	var haveNames, haveChecks []string
	var haveArches []kernels.Arch
	for _, k := range m.Kernels {
		haveNames = append(haveNames, k.Name)
		for _, a := range k.Arch {
			if !slices.Contains(haveArches, a) {
				haveArches = append(haveArches, a)
			}
		}
	}
	for _, c := range m.Checks {
		haveChecks = append(haveChecks, c.Name)
	}

	var errs []error
	for _, n := range names {
		if !slices.Contains(haveNames, n) {
			errs = append(errs, m.errorf("no kernel %q%s; kernels: %s", n, spelling.DidYouMean(n, haveNames), strings.Join(haveNames, ", ")))
		}
	}
	for _, a := range arches {
		if !slices.Contains(haveArches, a) {
			errs = append(errs, m.errorf("no kernel runs on %s; arches: %s", a, joinArches(haveArches)))
		}
	}
	for _, c := range checks {
		if !slices.Contains(haveChecks, c) {
			errs = append(errs, m.errorf("no check %q%s; checks: %s", c, spelling.DidYouMean(c, haveChecks), strings.Join(haveChecks, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	out := &Matrix{Path: m.Path, Defaults: m.Defaults}
	for _, k := range m.Kernels {
		if len(names) > 0 && !slices.Contains(names, k.Name) {
			continue
		}
		if len(arches) > 0 {
			k.Arch = slices.DeleteFunc(slices.Clone(k.Arch), func(a kernels.Arch) bool {
				return !slices.Contains(arches, a)
			})
		} else {
			k.Arch = slices.Clone(k.Arch)
		}
		if len(k.Arch) > 0 {
			out.Kernels = append(out.Kernels, k)
		}
	}
	if len(out.Kernels) == 0 {
		return nil, m.errorf("no selected kernel (%s) runs on %s", strings.Join(names, ", "), joinArches(arches))
	}
	for _, c := range m.Checks {
		if len(checks) == 0 || slices.Contains(checks, c.Name) {
			out.Checks = append(out.Checks, c)
		}
	}
	return out, nil
}

func (m *Matrix) errorf(format string, args ...any) error {
	return &MatrixError{File: m.Path, Msg: fmt.Sprintf(format, args...)}
}

func joinArches(arches []kernels.Arch) string {
	s := make([]string, len(arches))
	for i, a := range arches {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Plan turns the checks of m into the plan sent to the guests of arch a,
// and lists the checks that do not run there (Check.ByArch).
func (m *Matrix) Plan(a kernels.Arch) (protocol.Plan, []Check) {
	p := protocol.Plan{Checks: make([]protocol.CheckSpec, 0, len(m.Checks))}
	var skipped []Check
	for _, c := range m.Checks {
		to := c.Timeout
		if to == 0 {
			to = m.Defaults.CheckTimeout
		}
		params := c.Params
		if c.ByArch != nil {
			ac, ok := c.ByArch[a]
			if !ok {
				skipped = append(skipped, c)
				continue
			}
			params = ac.Params
		}
		p.Checks = append(p.Checks, protocol.CheckSpec{Name: c.Name, Params: params, Timeout: protocol.Duration(to)})
	}
	return p, skipped
}

// LockKernels lists the kernels of m as a lock file records them.
func (m *Matrix) LockKernels() []kernels.MatrixKernel {
	var ks []kernels.MatrixKernel
	for _, k := range m.Kernels {
		ks = append(ks, kernels.MatrixKernel{Name: k.Name, Arch: k.Arch, Source: k.Source})
	}
	return ks
}
