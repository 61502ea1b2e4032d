// Package matrix is what a matrix file says: the kernels, the checks and
// their parameters, the defaults and limits, as the user wrote them and as
// the host side of each check reads them (the guest side is package guest).
// It parses and validates a matrix (YAML, with every problem reported at
// once with its line and column), lists its targets (kernel × arch), selects
// and shards them, and turns its checks into the plan a guest of one arch
// runs (Matrix.Plan).
//
// Promises:
//   - A matrix that parses is usable: every check is one protocol knows,
//     every parameter checked on the host, every path and name one the
//     guest accepts; bad input is an error wrapping ErrBadMatrix (exit code
//     2) that names the problem and its fix.
//   - Parsing is bounded (file size, YAML nodes, aliases, number of
//     problems reported) whatever the input.
//   - A plan built from a parsed matrix fits one protocol message
//     (matrix_limits.go checks it when the matrix is loaded).
//   - It starts nothing and reads only the files the matrix names.
package matrix
