package matrix

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func kernelsJSON(t *testing.T, m *Matrix) string {
	b, err := json.Marshal(m.Kernels)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The built-in matrix has the kernels and defaults of the repository's.
func TestDefaultMatrixKernels(t *testing.T) {
	repo, err := LoadMatrix(filepath.Join("..", "..", "matrix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultMatrix()
	if got, want := kernelsJSON(t, def), kernelsJSON(t, repo); got != want {
		t.Errorf("built-in kernels\n %s\ndiffer from matrix.yaml's\n %s", got, want)
	}
	if def.Defaults != repo.Defaults {
		t.Errorf("built-in defaults %+v, matrix.yaml's %+v", def.Defaults, repo.Defaults)
	}
	if def.Path != "" {
		t.Errorf("built-in matrix has path %q: a lock file would be looked for beside it", def.Path)
	}
}

func TestKernelMatrix(t *testing.T) {
	file := filepath.Join("..", "..", "matrix.yaml")
	t.Setenv(MatrixEnv, "")
	if m, err := KernelMatrix(""); err != nil || m.Path != "" {
		t.Errorf("no file, no env: %v, path %q; want the built-in", err, m.Path)
	}
	t.Setenv(MatrixEnv, file)
	if m, err := KernelMatrix(""); err != nil || m.Path != file {
		t.Errorf("env: %v; want %s", err, file)
	}
	if _, err := KernelMatrix(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Errorf("a missing --matrix file was accepted")
	}
}
