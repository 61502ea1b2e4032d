package matrix

import (
	_ "embed"
	"fmt"
	"os"
)

//go:embed matrix_default.yaml
var defaultMatrixYAML []byte

// DefaultMatrixName names the built-in matrix in messages.
const DefaultMatrixName = "the built-in default matrix"

// DefaultMatrix returns the kernels of the repository's matrix.yaml (Debian
// 5.10, 6.1 and 6.12 on x86_64 and arm64), built into vmrunner. Its Path is
// empty: there is no lock file beside it.
func DefaultMatrix() *Matrix {
	m, err := ParseMatrix(DefaultMatrixName, defaultMatrixYAML)
	if err != nil {
		panic(fmt.Sprintf("built-in matrix: %v", err)) // TestDefaultMatrixKernels catches it
	}
	m.Path = ""
	return m
}

// MatrixEnv names the variable holding the matrix that vmrunner exec
// resolves kernel names against when --matrix is not given.
const MatrixEnv = "VMRUNNER_MATRIX"

// KernelMatrix returns the matrix whose kernels a command without a matrix
// argument uses: file when given, else $VMRUNNER_MATRIX, else
// DefaultMatrix.
func KernelMatrix(file string) (*Matrix, error) {
	if file == "" {
		file = os.Getenv(MatrixEnv)
	}
	if file == "" {
		return DefaultMatrix(), nil
	}
	return LoadMatrix(file)
}
