package runner

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vmrunner/vmrunner/internal/inputfile"
)

// Bounds on the host's environment passed to a program: a plan message
// carries it (1 MiB at most), and the guest's execve refuses a string
// over 128 KiB (MAX_ARG_STRLEN).
const (
	MaxHostEnvVars  = 1024
	MaxHostEnvBytes = 256 << 10
	maxEnvString    = 128 << 10
)

// guestOwnEnv are the host's variables the guest sets itself: they name
// the host's session (its paths, user, shell, terminal, temporary
// directory), which the guest's files do not have. A program that needs
// one gets it with --env.
var guestOwnEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "PWD", "OLDPWD", "SHLVL", "_", "TMPDIR"}

// hostEnv is the part of the host's environment (KEY=VALUE, as
// os.Environ gives it) passed to the program: all of it but guestOwnEnv
// and entries the guest could not set (no key, a NUL). Values are passed
// as they are, never read by a shell. More than MaxHostEnvVars variables,
// MaxHostEnvBytes in all, or one over 128 KiB is an error naming the
// largest.
func hostEnv(environ []string) ([]string, error) {
	var out []string
	total := 0
	for _, e := range environ {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsRune(e, 0) || slices.Contains(guestOwnEnv, k) {
			continue
		}
		out = append(out, e)
		total += len(e) + 1
	}
	largest := func() string {
		by := slices.Clone(out)
		slices.SortFunc(by, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
		var names []string
		for _, e := range by[:min(3, len(by))] {
			k, _, _ := strings.Cut(e, "=")
			names = append(names, fmt.Sprintf("%s %s", k, inputfile.Size(int64(len(e)))))
		}
		return strings.Join(names, ", ")
	}
	for _, e := range out {
		if len(e)+1 > maxEnvString { // with its NUL
			k, _, _ := strings.Cut(e, "=")
			return nil, badInputf("host environment: %s is %d bytes, more than the %d a guest program accepts; unset it, or give --no-host-env and --env for the variables the program needs",
				k, len(e)+1, maxEnvString)
		}
	}
	if len(out) > MaxHostEnvVars || total > MaxHostEnvBytes {
		return nil, badInputf("host environment: %d variables, %s, more than the %d variables and %s passed to the guest (largest: %s); unset some, or give --no-host-env and --env for those the program needs",
			len(out), inputfile.Size(int64(total)), MaxHostEnvVars, inputfile.Size(MaxHostEnvBytes), largest())
	}
	return out, nil
}
