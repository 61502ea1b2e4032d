package matrix

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates (cumulative, whether freed or
// not: an upper bound of what it holds at any time).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestMatrixTooLarge(t *testing.T) {
	const want = "the matrix is larger than 256 KiB, the most vmrunner reads; a matrix is a few KiB: check that this is the right file"
	data := []byte(strings.Repeat("# comment\n", MaxMatrixSize/10+1))
	_, err := ParseMatrix("m.yaml", data)
	if err == nil || err.Error() != "m.yaml: "+want || !errors.Is(err, ErrBadMatrix) {
		t.Fatalf("got %v", err)
	}

	// A file of a gigabyte, or no end at all, is read no further than
	// the bound.
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{huge, "/dev/zero"} {
		var err error
		n := allocated(func() { _, err = LoadMatrix(path) })
		if err == nil || err.Error() != path+": "+want {
			t.Errorf("%s: got %v", path, err)
		}
		if n > 4<<20 {
			t.Errorf("%s: reading it allocated %d MiB, want under 4", path, n>>20)
		}
	}
}

// TestMatrixAliasBounds: aliases that stand for more than the bounds are
// refused where they cross them, before anything is decoded, for little
// memory. (bad-aliases.yaml has the nodes' case in full.)
func TestMatrixAliasBounds(t *testing.T) {
	var unknownKeys []string
	for i := range 2000 {
		unknownKeys = append(unknownKeys, fmt.Sprintf("x%d: 1", i))
	}
	big := strings.Repeat("a", 100<<10)
	for _, tc := range []struct {
		name, yaml, want string
	}{
		// The shape of the report: kernels aliasing one big
		// anchor, every copy full of problems (26 KB of it took 34 s and
		// 1 GB before).
		{"kernels alias one anchor", "kernels:\n  - &k {name: a, source: {debian: {suite: bookworm}}, " + strings.Join(unknownKeys, ", ") + "}\n" +
			strings.Repeat("  - *k\n", 12500) + "checks: [btf]\n",
			"m.yaml:51:5: aliases expand the matrix past 200000 YAML nodes or 4 MiB of text (here: *k); write the values out, or alias less"},
		{"text", "kernels:\n  - {name: &s \"" + big + "\", source: {debian: {suite: bookworm}}}\n" +
			strings.Repeat("  - {name: *s, source: {debian: {suite: bookworm}}}\n", 50) + "checks: [btf]\n",
			"m.yaml:42:12: aliases expand the matrix past 200000 YAML nodes or 4 MiB of text (here: *s); write the values out, or alias less"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = ParseMatrix("m.yaml", []byte(tc.yaml)) })
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
			if limit := 64*len(tc.yaml) + 1<<20; n > uint64(limit) {
				t.Errorf("%d KB of matrix allocated %d MiB, want at most %d MiB", len(tc.yaml)>>10, n>>20, limit>>20)
			}
		})
	}
}

func TestMatrixProblemsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("kernels: [{name: k, source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n")
	for i := 0; b.Len() < MaxMatrixSize-20; i++ {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	var err error
	n := allocated(func() { _, err = ParseMatrix("m.yaml", []byte(b.String())) })
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	equal(t, "lines", len(lines), MaxMatrixProblems+1)
	equal(t, "first", lines[0], `m.yaml:3:1: unknown key "k0"; allowed keys: defaults, kernels, checks`)
	if want := "m.yaml: and 27267 more problems (the first 50 are shown)"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
	// yaml.v3 takes about 120 bytes per byte of input; the problems must
	// not take much more than that.
	if limit := uint64(400 * MaxMatrixSize); n > limit {
		t.Errorf("allocated %d MiB, want at most %d", n>>20, limit>>20)
	}
}

// TestMatrixPlanTooLarge: a valid matrix whose plan could not be sent to
// the guest in one message is refused before any VM boots, naming the
// check whose parameters are too big. (cmd/vmrunner's TestBadInput has the
// same with a glob matching thousands of objects.)
func TestMatrixPlanTooLarge(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.o"), []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("p", 100<<10)
	matrix := func(copies int) []byte {
		return []byte(testKernel + "checks:\n  - btf\n  - verifier: {objects: [a.o], programs: [&p " + name + strings.Repeat(", *p", copies-1) + "]}\n")
	}
	_, err := ParseMatrix(filepath.Join(dir, "m.yaml"), matrix(11))
	want := filepath.Join(dir, "m.yaml") + ":5:5: checks[1].verifier: parameters too large: 1.1 MiB of a plan of 1.1 MiB, which must fit in one 1 MiB protocol message; use fewer objects or programs, or split the matrix"
	if err == nil || err.Error() != want || !errors.Is(err, ErrBadMatrix) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := ParseMatrix(filepath.Join(dir, "m.yaml"), matrix(10)); err != nil {
		t.Error(err)
	}
}

// TestMatrixProblemClipped: a problem quoting a long value is cut, so that
// 50 problems stay a screenful.
func TestMatrixProblemClipped(t *testing.T) {
	name := strings.Repeat("é", 50<<10)
	_, err := ParseMatrix("m.yaml", []byte("kernels: [{name: "+name+", source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n"))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `m.yaml:1:18: kernels[0].name: "éé`) || !strings.HasSuffix(msg, "é…") || len(msg) > len("m.yaml:1:18: ")+maxProblemLen+len("…") {
		t.Errorf("got %d bytes: %s", len(msg), msg)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 10: "256 KiB", 1 << 20: "1 MiB", 1<<20 + 1<<19: "1.5 MiB"} {
		equal(t, fmt.Sprint(n), formatBytes(n), want)
	}
}
