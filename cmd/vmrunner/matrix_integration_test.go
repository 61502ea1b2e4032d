package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadMatrixBeforeBoot: parameters and matrices that vmrunner checks
// before any VM boots, through the CLI: exit 2, the problem named at its
// position, and no run directory (nothing booted).
func TestBadMatrixBeforeBoot(t *testing.T) {
	integration(t)
	const kernel = "kernels:\n  - {name: \"6.1\", arch: x86_64, source: {debian: {suite: bookworm}}}\n"
	long := strings.Repeat("x", 240)
	var keys strings.Builder
	for i := range 60 {
		fmt.Fprintf(&keys, "k%d: 1\n", i)
	}
	tests := []struct {
		name     string
		matrix   string
		setup    func(t *testing.T, dir string) // beside the matrix
		contains []string
	}{
		{
			name:     "selftest without an action",
			matrix:   kernel + "checks:\n  - selftest\n",
			contains: []string{"matrix.yaml:4:5: checks[0].selftest: missing action: expected one of pass, panic"},
		},
		{
			name:     "workload rate out of range",
			matrix:   kernel + "checks:\n  - workload: {rates: {http: 2000000}}\n",
			contains: []string{"matrix.yaml:4:30: checks[0].workload: rates: http: 2000000: expected operations per second from 0 to 1000000"},
		},
		{
			name:     "too large",
			matrix:   kernel + "checks: [btf]\n" + strings.Repeat("# padding\n", 30000),
			contains: []string{"matrix.yaml: the matrix is larger than 256 KiB"},
		},
		{
			name: "alias bomb",
			matrix: kernel + "checks: [btf]\nx: [&a [x,x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]," +
				" &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]\n",
			contains: []string{"aliases expand the matrix past 200000 YAML nodes or 4 MiB of text (here: *e)"},
		},
		{
			name:     "more problems than shown",
			matrix:   kernel + "checks: [btf]\n" + keys.String(),
			contains: []string{"matrix.yaml:4:1: unknown key \"k0\"", "matrix.yaml:53:1: unknown key \"k49\"", "matrix.yaml: and 10 more problems (the first 50 are shown)"},
		},
		{
			name:   "plan larger than a message",
			matrix: kernel + "checks:\n  - btf\n  - verifier: {objects: [objs/*.o]}\n",
			setup: func(t *testing.T, dir string) {
				objs := filepath.Join(dir, "objs")
				if err := os.Mkdir(objs, 0o755); err != nil {
					t.Fatal(err)
				}
				for i := range 4200 {
					if err := os.WriteFile(filepath.Join(objs, fmt.Sprintf("%s%04d.o", long, i)), []byte("\x7fELF"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			contains: []string{"matrix.yaml:5:5: checks[1].verifier: parameters too large: 1.1 MiB of a plan of 1.1 MiB, which must fit in one 1 MiB protocol message"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "matrix.yaml", tt.matrix)
			if tt.setup != nil {
				tt.setup(t, filepath.Dir(path))
			}
			out := t.TempDir()
			res := vmrunnerCLI(t, "run", path, "--out", out)
			if res.code != 2 {
				t.Errorf("exit code %d, want 2", res.code)
			}
			for _, s := range tt.contains {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr does not say %q", s)
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("a run directory was made: %v", entries)
			}
		})
	}
}
