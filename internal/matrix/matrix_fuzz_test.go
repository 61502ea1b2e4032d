package matrix

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// maxFuzzSeed bounds the seeds of FuzzParseMatrix: they are matrices, not
// stress inputs, and the fuzzer grows them itself.
const maxFuzzSeed = 16 << 10

// FuzzParseMatrix: whatever the bytes, ParseMatrix returns a matrix or
// positioned *MatrixErrors (at most MaxMatrixProblems of them and a count),
// and what it allocates is bounded by the input's size and the YAML nodes
// it stands for, aliases expanded (within MaxMatrixNodes): no input costs
// more than a few hundred MiB, as an alias bomb once cost gigabytes.
//
//	go test ./vmrunner -run '^$' -fuzz FuzzParseMatrix -fuzztime 1m
func FuzzParseMatrix(f *testing.F) {
	seeds, err := filepath.Glob("testdata/matrix/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("../../matrices/*.yaml")
	seeds = append(append(seeds, "../../matrix.yaml"), more...)
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > maxFuzzSeed {
			f.Fatalf("seed %s is %d bytes; seeds are at most %d", file, len(data), maxFuzzSeed)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"kernels: [",
		"checks: [btf, *x]",
		"kernels: &k [*k]",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b, *b]\n",
		"kernels: [{name: k, source: {debian: {suite: bookworm}}}]\nchecks: [{workload: {rates: {http: -1}}}, {selftest: {action: x}}]\n",
	} {
		f.Add([]byte(s))
	}

	dir := f.TempDir() // no file matches a verifier glob here
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *Matrix
		var err error
		n := allocated(func() { m, err = ParseMatrix(filepath.Join(dir, "m.yaml"), data) })

		// 1 KiB per node the input stands for (each may be a problem
		// with its message), 512 bytes per byte of input (yaml.v3 takes
		// about 120), and 2 MiB for everything else.
		nodes := 0
		var doc yaml.Node
		if len(data) <= MaxMatrixSize && yaml.Unmarshal(data, &doc) == nil {
			nodes = min(expansionSizer{}.size(&doc).nodes, MaxMatrixNodes)
		}
		if limit := uint64(2<<20 + 512*min(len(data), MaxMatrixSize+1) + 1024*nodes); n > limit {
			t.Errorf("%d bytes standing for %d nodes allocated %d KiB, want at most %d KiB", len(data), nodes, n>>10, limit>>10)
		}

		if err == nil {
			if m == nil || len(m.Kernels) == 0 || len(m.Checks) == 0 {
				t.Errorf("no error and no matrix: %+v", m)
			}
			return
		}
		if m != nil || !errors.Is(err, ErrBadMatrix) {
			t.Errorf("error %v with matrix %v, or not ErrBadMatrix", err, m)
		}
		var me *MatrixError
		if !errors.As(err, &me) {
			t.Errorf("error is no *MatrixError: %T %v", err, err)
		}
		if lines := strings.Count(err.Error(), "\n") + 1; lines > MaxMatrixProblems+1 {
			t.Errorf("%d lines of problems, want at most %d", lines, MaxMatrixProblems+1)
		}
	})
}
