package matrix

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// Bounds on what reading a matrix may cost, whatever the file holds. A real
// matrix is a few KiB with a few hundred YAML nodes; these are far above that
// and far below what would hurt: yaml.v3 allocates about 120 bytes per byte
// of input, and each node, aliases expanded, is decoded and checked.
const (
	// MaxMatrixSize bounds a matrix file, in bytes.
	MaxMatrixSize = 256 << 10
	// MaxMatrixNodes and MaxMatrixText bound the YAML nodes and the bytes
	// of scalar text of a matrix with its aliases (*name) expanded: a few
	// KiB of aliases to aliases would otherwise stand for gigabytes.
	MaxMatrixNodes = 200_000
	MaxMatrixText  = 4 << 20
	// MaxMatrixProblems is how many problems are reported; the rest are
	// counted.
	MaxMatrixProblems = 50
)

// checkSize reports a matrix larger than MaxMatrixSize.
func (p *matrixParser) checkSize(data []byte) bool {
	if len(data) <= MaxMatrixSize {
		return true
	}
	p.add(&MatrixError{File: p.file, Msg: fmt.Sprintf("the matrix is larger than %s, the most vmrunner reads; a matrix is a few KiB: check that this is the right file", formatBytes(MaxMatrixSize))})
	return false
}

// expansion is the size of a YAML tree with its aliases expanded, each part
// saturating just past its bound.
type expansion struct{ nodes, text int }

func (e expansion) add(o expansion) expansion {
	return expansion{min(e.nodes+o.nodes, MaxMatrixNodes+1), min(e.text+o.text, MaxMatrixText+1)}
}

func (e expansion) over() bool { return e.nodes > MaxMatrixNodes || e.text > MaxMatrixText }

// expansionSizer measures YAML subtrees with their aliases expanded, each
// anchor once.
type expansionSizer map[*yaml.Node]expansion

func (memo expansionSizer) size(n *yaml.Node) expansion {
	if n == nil {
		return expansion{}
	}
	if e, ok := memo[n]; ok {
		return e
	}
	memo[n] = expansion{MaxMatrixNodes + 1, 0} // an alias to itself is endless
	e := expansion{1, len(n.Value)}
	if n.Kind == yaml.AliasNode {
		e = e.add(memo.size(n.Alias))
	}
	for _, c := range n.Content {
		e = e.add(memo.size(c))
	}
	memo[n] = e
	return e
}

// checkExpansion reports a document whose aliases expand it past
// MaxMatrixNodes or MaxMatrixText, at the first alias (in file order) that
// does. It costs one pass over the tree as written.
func (p *matrixParser) checkExpansion(root *yaml.Node) bool {
	size := expansionSizer{}.size
	if !size(root).over() {
		return true
	}

	// Walk the tree as written, in order, adding whole subtrees while they
	// fit: the alias that does not is the culprit.
	var used expansion
	var find func(n *yaml.Node) *yaml.Node
	find = func(n *yaml.Node) *yaml.Node {
		if s := size(n); !used.add(s).over() {
			used = used.add(s)
			return nil
		}
		if n.Kind == yaml.AliasNode {
			return n
		}
		used = used.add(expansion{1, len(n.Value)})
		for _, c := range n.Content {
			if at := find(c); at != nil {
				return at
			}
		}
		return nil
	}
	at := find(root)
	if at == nil {
		at = root
	}
	p.errorf(at, "aliases expand the matrix past %d YAML nodes or %s of text (here: *%s); write the values out, or alias less",
		MaxMatrixNodes, formatBytes(MaxMatrixText), at.Value)
	return false
}

// checkPlan reports a matrix whose plan, every check with its parameters in
// the guest's form, would not fit in one protocol message: the guest could
// never receive it. names are the checks' name nodes, in m.Checks's order.
// The check with the largest parameters is named.
func (p *matrixParser) checkPlan(m *Matrix, names []*yaml.Node) {
	// Each arch has its plan (a test check's parameters are per arch): the
	// largest must fit.
	var size int
	var err error
	for _, a := range kernels.Arches {
		plan, _ := m.Plan(a)
		if size, err = protocol.FramedSize(protocol.Message{Type: protocol.TypePlan, Plan: &plan}); err != nil {
			break
		}
	}
	if err == nil || !errors.Is(err, protocol.ErrTooLarge) || len(m.Checks) == 0 {
		if err != nil && !errors.Is(err, protocol.ErrTooLarge) {
			p.add(&MatrixError{File: p.file, Msg: fmt.Sprintf("encode the plan: %v", err)})
		}
		return
	}
	big := 0
	for i, c := range m.Checks {
		if len(c.Params) > len(m.Checks[big].Params) {
			big = i
		}
	}
	c := m.Checks[big]
	p.errorf(names[big], "checks[%d].%s: parameters too large: %s of a plan of %s, which must fit in one %s protocol message; use fewer objects or programs, or split the matrix",
		big, c.Name, formatBytes(len(c.Params)), formatBytes(size), formatBytes(protocol.MaxMessageSize))
}

// formatBytes writes n in B, KiB or MiB.
func formatBytes(n int) string {
	switch {
	case n >= 1<<20:
		if n%(1<<20) == 0 {
			return fmt.Sprintf("%d MiB", n>>20)
		}
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		if n%(1<<10) == 0 {
			return fmt.Sprintf("%d KiB", n>>10)
		}
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
