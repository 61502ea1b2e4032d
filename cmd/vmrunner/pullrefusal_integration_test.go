package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pullRefusal is a kernel source that vmrunner kernels pull must refuse.
type pullRefusal struct {
	name, source, arch string
	code               int      // the exit code
	msg                []string // what the error line names
	before             func()   // spoils the fixture first, when set
}

// testPullRefusals pulls each source of cases as kernel "k" into cache
// and checks that it is refused with its exit code in one last line of
// stderr naming k/<arch> and each of its msg, leaving no kernel in cache.
func testPullRefusals(t *testing.T, cache string, cases []pullRefusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			m := writeFile(t, "matrix.yaml", "kernels:\n  - {name: k, arch: "+tc.arch+", source: "+tc.source+"}\nchecks: [btf]\n")
			res := vmrunnerCLI(t, "kernels", "pull", "--cache-dir", cache, m)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			last := lines[len(lines)-1]
			if res.code != tc.code || !strings.HasPrefix(last, "vmrunner: k/"+tc.arch+": ") {
				t.Errorf("exit %d, want %d with a last line naming k/%s", res.code, tc.code, tc.arch)
			}
			for _, want := range tc.msg {
				if !strings.Contains(last, want) {
					t.Errorf("error line does not name %q", want)
				}
			}
			entries, _ := os.ReadDir(filepath.Join(cache, "kernels"))
			for _, e := range entries {
				t.Errorf("cache holds kernels/%s after a refusal", e.Name())
			}
		})
	}
}

// flipMiddleByte changes the byte in the middle of the file at path: a
// package changed after its index was made.
func flipMiddleByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
