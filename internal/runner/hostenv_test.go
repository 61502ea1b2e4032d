package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/protocol"
)

func TestHostEnv(t *testing.T) {
	got, err := hostEnv([]string{
		"CI_MAX_KERNEL_VERSION=6.1", "GOTRACEBACK=all", "EMPTY=", "QUOTED=a 'b' $(c) `d`",
		"PATH=/home/u/go/bin:/usr/bin", "HOME=/home/u", "USER=u", "TERM=xterm", "TMPDIR=/run/user/1000", "PWD=/src",
		"=C:=C:\\", "NOEQUALS", "NUL=a\x00b",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Values pass as they are: no shell reads them.
	want := []string{"CI_MAX_KERNEL_VERSION=6.1", "GOTRACEBACK=all", "EMPTY=", "QUOTED=a 'b' $(c) `d`"}
	if !slices.Equal(got, want) {
		t.Errorf("hostEnv = %q, want %q", got, want)
	}
	if probs := (protocol.TestParams{Name: "x", Binary: "/x", Format: protocol.FormatExit, Env: got}).Validate(); len(probs) > 0 {
		t.Errorf("the guest would refuse them: %v", probs)
	}
}

func TestHostEnvBounds(t *testing.T) {
	many := make([]string, MaxHostEnvVars+1)
	for i := range many {
		many[i] = fmt.Sprintf("V%d=1", i)
	}
	big := make([]string, 5)
	for i := range big {
		big[i] = fmt.Sprintf("BIG%d=%s", i, strings.Repeat("x", 60<<10))
	}
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string
	}{
		{"too many", many, []string{"1025 variables", "more than the 1024 variables", "--no-host-env"}},
		{"too large", big, []string{"5 variables, 300 KiB", "and 256 KiB", "largest: BIG0 60 KiB", "--no-host-env"}},
		{"one too long", []string{"LONG=" + strings.Repeat("y", 128<<10)}, []string{"LONG is 131078 bytes, more than the 131072", "--no-host-env"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hostEnv(tc.environ)
			if !errors.Is(err, matrix.ErrBadMatrix) {
				t.Fatalf("err = %v, want bad input", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if env, err := hostEnv(many[:MaxHostEnvVars]); err != nil || len(env) != MaxHostEnvVars {
		t.Errorf("%d variables: %d passed, err %v; want all", MaxHostEnvVars, len(env), err)
	}
}

// TestPlanExecHostEnv: the program gets the host's variables, then --env's
// over them (the guest applies them in order); without HostEnv, only --env.
func TestPlanExecHostEnv(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		hostEnv []string
		want    []string
	}{
		{"host's then --env", []string{"SUITE=host", "HOME=/home/u", "ONLY_HOST=1"}, []string{"SUITE=host", "ONLY_HOST=1", "SUITE=flag"}},
		{"none", nil, []string{"SUITE=flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := PlanExec(ExecOptions{Options: Options{Matrix: matrix.DefaultMatrix()}, Program: self,
				HostEnv: tc.hostEnv, Env: []string{"SUITE=flag"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, ac := range m.Checks[0].ByArch {
				var p protocol.TestParams
				if err := json.Unmarshal(ac.Params, &p); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(p.Env, tc.want) {
					t.Errorf("env %q, want %q", p.Env, tc.want)
				}
			}
		})
	}
}
