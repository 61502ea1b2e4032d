package matrix

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestOnlyTargets(t *testing.T) {
	m, err := ParseMatrix("m.yaml", []byte(`
kernels:
  - {name: "5.10", arch: x86_64, source: {debian: {suite: bullseye}}}
  - {name: "6.1", source: {debian: {suite: bookworm}}}
  - {name: "6.12", arch: [arm64, x86_64], source: {debian: {suite: trixie}}}
checks:
  - btf: {require: [sock]}
`))
	if err != nil {
		t.Fatal(err)
	}
	targetLabels := func(m *Matrix) []string {
		var ls []string
		for _, tg := range m.Targets() {
			ls = append(ls, tg.Label())
		}
		return ls
	}
	before := targetLabels(m)
	s, err := m.OnlyTargets([]string{"6.12/x86_64", "6.1/arm64", "5.10/x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	// Matrix order, whatever the order asked.
	if got, want := targetLabels(s), []string{"5.10/x86_64", "6.1/arm64", "6.12/x86_64"}; !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if len(s.Checks) != 1 || s.Path != "m.yaml" {
		t.Errorf("checks %v, path %q: kept from the matrix", s.Checks, s.Path)
	}
	if !slices.Equal(targetLabels(m), before) {
		t.Errorf("the matrix changed: %v", targetLabels(m))
	}
	_, err = m.OnlyTargets([]string{"6.1/x86_64", "5.10/arm64", "4.19/x86_64"})
	if !errors.Is(err, ErrBadMatrix) || !strings.Contains(err.Error(), "no target 4.19/x86_64, 5.10/arm64 in the matrix") {
		t.Errorf("unknown targets: %v", err)
	}
}
