package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorExcerpt: a log's excerpt ends just after the line that says why,
// wherever it is — the verifier's line inside the log libbpf printed in a
// program's output (a real one: biolatency on 5.10), the CO-RE line of a
// verifier log (6.1 arm64) — and a log without one gives its last lines.
func TestErrorExcerpt(t *testing.T) {
	dir := t.TempDir()
	bio, err := os.ReadFile("../reason/testdata/output/5.10-x86_64-libbpf-tools-biolatency.txt")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("output line\n", 100)
	core, err := os.ReadFile("../reason/testdata/6.1-arm64-wrong_arch-read_count.log")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"bio/output.log":    string(bio) + long,
		"verifier/core.log": string(core),
		"plain/output.log":  long + "FAIL\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		file, which, last string
	}{
		{"bio/output.log", "lines 16-30 of 134, to the error at line 28", "-- END PROG LOAD LOG --"},
		{"verifier/core.log", "lines 1-6 of 9, to the error at line 4", "invalid func unknown#195896080"},
		{"plain/output.log", "last lines", "FAIL"},
	} {
		ex, which, err := errorExcerpt(dir, tc.file, 15, 4096)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(ex, "\n")
		if which != tc.which || lines[len(lines)-1] != tc.last || len(lines) > 15 {
			t.Errorf("%s: %q (%d lines, last %q), want %q ending %q", tc.file, which, len(lines), lines[len(lines)-1], tc.which, tc.last)
		}
	}
}
