package matrix

import (
	"fmt"
	"slices"
	"strings"
)

// OnlyTargets returns the part of the matrix that boots exactly the targets
// labelled (Target.Label: "6.1/x86_64"), in matrix order: a shard of a plan.
// A label the matrix does not have is an error wrapping ErrBadMatrix.
// m is not modified.
func (m *Matrix) OnlyTargets(labels []string) (*Matrix, error) {
	want := map[string]bool{}
	for _, l := range labels {
		want[l] = true
	}
	out := *m
	out.Kernels = nil
	for _, k := range m.Kernels {
		kk := k
		kk.Arch = nil
		for _, a := range k.Arch {
			if t := (Target{k, a}); want[t.Label()] {
				kk.Arch = append(kk.Arch, a)
				delete(want, t.Label())
			}
		}
		if len(kk.Arch) > 0 {
			out.Kernels = append(out.Kernels, kk)
		}
	}
	if len(want) > 0 {
		var missing []string
		for l := range want {
			missing = append(missing, l)
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("%w: %s: no target %s in the matrix", ErrBadMatrix, m.Path, strings.Join(missing, ", "))
	}
	return &out, nil
}
