package matrix

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/spelling"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
)

// LoadMatrix reads and parses the matrix file at path; it reads at most
// MaxMatrixSize bytes of it.
func LoadMatrix(path string) (*Matrix, error) {
	data, err := readMatrix(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (give the matrix file: vmrunner run FILE; the default is ./matrix.yaml)", ErrBadMatrix, err)
	}
	return ParseMatrix(path, data)
}

// readMatrix reads path, or its first MaxMatrixSize+1 bytes when it is
// larger: enough for ParseMatrix to say it is too large.
func readMatrix(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxMatrixSize+1))
}

// ParseMatrix parses a matrix from data; file names it in errors.
//
// The matrix is checked strictly: unknown keys, values of the wrong type,
// missing or duplicate names and the like are all reported, each as a
// *MatrixError with its position, joined with errors.Join in file order:
// the first MaxMatrixProblems of them, then a *MatrixError counting the
// rest. What reading a matrix may cost is bounded (see MaxMatrixSize).
func ParseMatrix(file string, data []byte) (*Matrix, error) {
	p := &matrixParser{file: file}
	m := p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return m, nil
}

type matrixParser struct {
	file string
	// first are the first MaxMatrixProblems problems by position, in
	// order; seen has a hash of every distinct problem, counted by n.
	first []*MatrixError
	seen  map[uint64]struct{}
	n     int
}

var problemSeed = maphash.MakeSeed()

func (p *matrixParser) errorf(n *yaml.Node, format string, args ...any) {
	p.add(&MatrixError{File: p.file, Line: max(n.Line, 1), Col: max(n.Column, 1), Msg: fmt.Sprintf(format, args...)})
}

// add records e unless the same problem was recorded before. Only the first
// MaxMatrixProblems by position are kept, so that a matrix with a million
// problems costs no more memory than one with a hundred.
func (p *matrixParser) add(e *MatrixError) {
	e.Msg = clipProblem(e.Msg)
	if p.seen == nil {
		p.seen = make(map[uint64]struct{})
	}
	h := maphash.Comparable(problemSeed, *e)
	if _, dup := p.seen[h]; dup {
		return
	}
	p.seen[h] = struct{}{}
	p.n++
	// After every problem at or before e's position: the order of
	// problems at one position is the order they were found in.
	i, _ := slices.BinarySearchFunc(p.first, e, func(a, b *MatrixError) int {
		if c := cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col)); c != 0 {
			return c
		}
		return -1
	})
	if i >= MaxMatrixProblems {
		return
	}
	p.first = slices.Insert(p.first, i, e)
	if len(p.first) > MaxMatrixProblems {
		p.first = p.first[:MaxMatrixProblems]
	}
}

// maxProblemLen bounds one problem's message: it may quote a value of the
// matrix, and a value may be 100 KiB long.
const maxProblemLen = 512

// clipProblem cuts msg to maxProblemLen bytes on a character boundary.
func clipProblem(msg string) string { return text.Truncate(msg, maxProblemLen) }

// problems returns how many distinct problems were found.
func (p *matrixParser) problems() int { return p.n }

// err returns the problems found, sorted by position, or nil.
func (p *matrixParser) err() error {
	errs := make([]error, 0, len(p.first)+1)
	for _, e := range p.first {
		errs = append(errs, e)
	}
	if more := p.n - len(p.first); more > 0 {
		errs = append(errs, &MatrixError{File: p.file, Msg: fmt.Sprintf("and %d more problems (the first %d are shown)", more, len(p.first))})
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

func (p *matrixParser) parse(data []byte) *Matrix {
	if !p.checkSize(data) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(&doc, "empty matrix: expected keys defaults, kernels, checks")
		} else {
			p.syntaxError(data, err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(&extra, "a second YAML document; a matrix is one document")
	} else if !errors.Is(err, io.EOF) {
		p.syntaxError(data, err)
	}

	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if yamlstrict.IsNull(root) {
		p.errorf(root, "empty matrix: expected keys defaults, kernels, checks")
		return nil
	}
	if !p.checkExpansion(root) {
		return nil
	}

	var raw matrixYAML
	for _, prob := range yamlstrict.Decode(root, reflect.ValueOf(&raw).Elem(), "") {
		p.errorf(prob.Node, "%s", prob.Msg)
	}
	if root.Kind != yaml.MappingNode {
		return nil
	}

	m := &Matrix{Path: p.file, Defaults: Defaults{
		MemoryMiB:    cmp.Or(int(raw.Defaults.Memory), defaultMemoryMiB),
		CPUs:         cmp.Or(int(raw.Defaults.CPUs), defaultCPUs),
		Timeout:      cmp.Or(time.Duration(raw.Defaults.Timeout), defaultTimeout),
		CheckTimeout: cmp.Or(time.Duration(raw.Defaults.CheckTimeout), defaultCheckTimeout),
		NoSnapshot:   raw.Defaults.Snapshot != nil && !*raw.Defaults.Snapshot,
	}}
	p.kernels(root, raw.Kernels, m)
	names := p.checks(root, m)
	if p.problems() == 0 {
		p.checkPlan(m, names)
	}
	return m
}

// yamlLineRE matches the position in yaml.v3's syntax errors.
var yamlLineRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner. yaml.v3 v3.0.1 reports the line of a parser error 0-based (and
// leaves out "line 0"), the line of a scanner error 1-based.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxError turns yaml.v3's "yaml: line N: MSG" into a positioned error.
// yaml.v3 does not report the column; it is 1 unless the line is indented
// with a tab, the most common cause.
func (p *matrixParser) syntaxError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, col := 0, 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(yamlParserProblems, msg) {
		line++
	}
	line = max(line, 1)
	lines := bytes.Split(data, []byte("\n"))
	if line >= 1 && line <= len(lines) {
		text := lines[line-1]
		indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
		if i := bytes.IndexByte(indent, '\t'); i >= 0 {
			col = i + 1
			msg += "; indent with spaces, not tabs"
		}
	}
	p.add(&MatrixError{File: p.file, Line: line, Col: col, Msg: "invalid YAML: " + msg})
}

// kernels checks what yamlstrict.Decode cannot see: names present, safe and
// unique, and one source per kernel.
func (p *matrixParser) kernels(root *yaml.Node, raw []kernelYAML, m *Matrix) {
	list := yamlstrict.Value(root, "kernels")
	switch {
	case yamlstrict.IsNull(list):
		p.errorf(root, `missing kernels: expected a list like - {name: "6.1", source: {debian: {suite: bookworm}}}`)
		return
	case list.Kind != yaml.SequenceNode:
		return // reported by yamlstrict.Decode
	case len(list.Content) == 0:
		p.errorf(list, "kernels: expected at least one kernel")
		return
	}

	seen := make(map[string]*yaml.Node)
	for i, k := range raw {
		n := yamlstrict.Resolve(list.Content[i])
		path := fmt.Sprintf("kernels[%d]", i)
		if yamlstrict.IsNull(n) {
			p.errorf(n, "%s: expected a kernel, got nothing", path)
			continue
		}
		if n.Kind != yaml.MappingNode {
			continue // reported by yamlstrict.Decode
		}

		name := yamlstrict.Value(n, "name")
		switch {
		case misspelled(n, "name"):
			// reported by yamlstrict.Decode as an unknown key
		case yamlstrict.IsNull(name) || (name.Kind == yaml.ScalarNode && k.Name == ""):
			p.errorf(yamlstrict.Pos(n, "name"), "%s: missing name", path)
		case name.Kind != yaml.ScalarNode:
			// reported by yamlstrict.Decode
		case !isSafeName(k.Name):
			p.errorf(name, "%s.name: %q is not usable as a directory name; use letters, digits, '.', '_' and '-'", path, k.Name)
		case seen[k.Name] != nil:
			p.errorf(name, "%s.name: duplicate kernel %q (first at line %d)", path, k.Name, seen[k.Name].Line)
		default:
			seen[k.Name] = name
		}

		p.source(n, &k.Source, path)

		arches := []kernels.Arch(k.Arch)
		if len(arches) == 0 {
			arches = slices.Clone(kernels.Arches)
		}
		m.Kernels = append(m.Kernels, KernelEntry{
			Name:      k.Name,
			Arch:      arches,
			Source:    k.Source,
			MemoryMiB: int(k.Memory),
			CPUs:      int(k.CPUs),
		})
	}
}

// source checks that the kernel at n has exactly one kind of source, and
// what yamlstrict.Decode cannot check in it.
func (p *matrixParser) source(n *yaml.Node, spec *kernels.Spec, path string) {
	kinds := specKinds()
	src := yamlstrict.Value(n, "source")
	if yamlstrict.IsNull(src) {
		if misspelled(n, "source") {
			return // reported by yamlstrict.Decode as an unknown key
		}
		p.errorf(yamlstrict.Pos(n, "source"), "%s: missing source; expected one of: %s", path, strings.Join(kinds, ", "))
		return
	}
	if src.Kind != yaml.MappingNode {
		return // reported by yamlstrict.Decode
	}
	path += ".source"
	p.oneKind(src, kinds, path)

	if key, deb := yamlstrict.Entry(src, "debian"); key != nil && (yamlstrict.IsNull(deb) || deb.Kind == yaml.MappingNode) {
		if yamlstrict.IsNull(deb) {
			deb = key
		}
		p.debian(deb, cmp.Or(spec.Debian, &kernels.DebianSpec{}), path+".debian")
	}
	if err := spec.Validate(); err != nil {
		p.errorf(src, "%s.%v", path, err)
	}
	spec.Rebase(filepath.Dir(p.file)) // local paths are relative to the matrix file
}

// oneKind reports a source mapping that does not have exactly one of kinds
// as a key. A kind with an empty value counts: "debian:" alone is a Debian
// source lacking its suite, not no source at all.
func (p *matrixParser) oneKind(src *yaml.Node, kinds []string, path string) {
	var set []string
	for _, key := range yamlstrict.Keys(src) {
		if slices.Contains(kinds, key) && !slices.Contains(set, key) {
			set = append(set, key)
		}
	}
	switch len(set) {
	case 0:
		p.errorf(src, "%s: expected one of: %s", path, strings.Join(kinds, ", "))
	case 1:
	default:
		p.errorf(src, "%s: has %s; expected exactly one", path, strings.Join(set, " and "))
	}
}

// debian checks a Debian source; n is its mapping, or the "debian" key when
// it has no value.
func (p *matrixParser) debian(n *yaml.Node, d *kernels.DebianSpec, path string) {
	suite := yamlstrict.Value(n, "suite")
	switch {
	case d.Suite == "":
		p.errorf(yamlstrict.Pos(n, "suite"), "%s: missing suite; expected a Debian suite like bookworm", path)
	case !isSafeName(d.Suite):
		p.errorf(suite, "%s.suite: expected a Debian suite like bookworm, got %q", path, d.Suite)
	}
	if flavour := yamlstrict.Value(n, "flavour"); d.Flavour != "" && !isSafeName(d.Flavour) {
		p.errorf(flavour, "%s.flavour: expected a kernel flavour like amd64 or cloud-arm64, got %q", path, d.Flavour)
	}
}

// specKinds lists the kinds of kernel source, as spelled in matrix.yaml
// (kernels.Spec's other keys, btf, are options of any kind).
func specKinds() []string {
	return kernels.Kinds()
}

// checks decodes the checks list: every item is NAME or NAME: {params}. It
// returns the name nodes of the checks it adds to m.
func (p *matrixParser) checks(root *yaml.Node, m *Matrix) []*yaml.Node {
	list := yamlstrict.Value(root, "checks")
	switch {
	case yamlstrict.IsNull(list):
		p.errorf(root, "missing checks: expected a list like - btf: {require: [task_struct]}")
		return nil
	case list.Kind != yaml.SequenceNode:
		return nil // reported by yamlstrict.Decode
	case len(list.Content) == 0:
		p.errorf(list, "checks: expected at least one check; known checks: %s", strings.Join(knownChecks(), ", "))
		return nil
	}

	seen := make(map[string]*yaml.Node)
	var names []*yaml.Node
	for i, n := range list.Content {
		c, name, ok := p.check(yamlstrict.Resolve(n), fmt.Sprintf("checks[%d]", i), m.Defaults.CheckTimeout)
		if !ok {
			continue
		}
		if first := seen[c.Name]; first != nil {
			p.errorf(name, "checks[%d]: duplicate check %q (first at line %d)", i, c.Name, first.Line)
			continue
		}
		seen[c.Name] = name
		m.Checks = append(m.Checks, c)
		names = append(names, name)
	}
	return names
}

// misspelled reports whether mapping n has a key that looks like a typo for
// key; yamlstrict.Decode has reported it, so "missing key" would be noise.
func misspelled(n *yaml.Node, key string) bool {
	return slices.ContainsFunc(yamlstrict.Keys(n), func(k string) bool {
		return k != key && spelling.DidYouMean(k, []string{key}) != ""
	})
}
