package vmrunner

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// checkParams lists the known checks and the type of each one's parameters.
// The parameters in matrix.yaml are decoded strictly into that type (by its
// yaml tags) and sent to the guest as its JSON encoding. Adding a check is
// one line here. The key "timeout" is reserved: it is the check's timeout.
var checkParams = map[string]reflect.Type{
	"btf":      reflect.TypeFor[protocol.BTFParams](),
	"features": reflect.TypeFor[featuresParams](),
	"verifier": reflect.TypeFor[verifierParams](),
}

// Defaults applied when matrix.yaml does not say otherwise.
const (
	defaultMemoryMiB    = 512
	defaultCPUs         = 1
	defaultTimeout      = 10 * time.Minute
	defaultCheckTimeout = 5 * time.Minute
)

// ErrBadMatrix is wrapped by every error about the content of a matrix or a
// selection from it: the user can fix it.
var ErrBadMatrix = errors.New("bad matrix")

// MatrixError is a problem in a matrix file, at a position when Line is not
// zero. It matches ErrBadMatrix with errors.Is.
type MatrixError struct {
	File      string
	Line, Col int
	Msg       string
}

// Error returns "FILE:LINE:COL: MSG", or "FILE: MSG" without a position.
func (e *MatrixError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d", e.Line, max(e.Col, 1))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrBadMatrix) true.
func (e *MatrixError) Is(target error) bool { return target == ErrBadMatrix }

// Matrix is a parsed matrix.yaml: the kernels to boot, on which
// architectures, and the checks to run in every VM.
type Matrix struct {
	Path     string // file it was read from
	Defaults Defaults
	Kernels  []KernelEntry
	Checks   []Check
}

// Defaults are the VM settings of every kernel that does not override them.
type Defaults struct {
	MemoryMiB    int           // "memory": 512M, 1G, 768MiB; default 512
	CPUs         int           // "cpus"; default 1
	Timeout      time.Duration // "timeout", per VM; default 10m
	CheckTimeout time.Duration // "check_timeout", per check; default 5m
}

// KernelEntry is one kernel of the matrix.
type KernelEntry struct {
	// Name identifies the kernel on the command line and in results; it is
	// safe as a directory name ([A-Za-z0-9._-], not "." or "..").
	Name string
	// Arch lists the architectures to boot it on, in matrix order.
	// matrix.yaml may omit it (all of kernels.Arches) or give one scalar.
	Arch   []kernels.Arch
	Source kernels.Spec // exactly one kind is set
	// MemoryMiB and CPUs override the defaults when not zero.
	MemoryMiB, CPUs int
}

// Check is one check to run in every VM.
type Check struct {
	Name string
	// Params are the check's parameters as JSON for the guest, encoded from
	// the check's parameter type; nil when matrix.yaml gives none.
	Params json.RawMessage
	// Timeout is the "timeout" given among the parameters, or else
	// Defaults.CheckTimeout. It is never part of Params.
	Timeout time.Duration
	// Files are host files the check needs in the guest (verifier objects).
	Files []GuestFile
}

// Target is one VM to run: a kernel on one architecture.
type Target struct {
	Kernel KernelEntry
	Arch   kernels.Arch
}

// Targets expands kernels × arches in matrix order: every arch of the first
// kernel, then of the second, and so on.
func (m *Matrix) Targets() []Target {
	var ts []Target
	for _, k := range m.Kernels {
		for _, a := range k.Arch {
			ts = append(ts, Target{k, a})
		}
	}
	return ts
}

// Select returns the part of the matrix named by kernel names, arches and
// check names; an empty filter keeps everything. m is not modified.
//
// Naming a kernel, arch or check the matrix does not have, or filters that
// together leave no target, is an error wrapping ErrBadMatrix that lists what
// the matrix has.
func (m *Matrix) Select(names []string, arches []kernels.Arch, checks []string) (*Matrix, error) {
	var haveNames, haveChecks []string
	var haveArches []kernels.Arch
	for _, k := range m.Kernels {
		haveNames = append(haveNames, k.Name)
		for _, a := range k.Arch {
			if !slices.Contains(haveArches, a) {
				haveArches = append(haveArches, a)
			}
		}
	}
	for _, c := range m.Checks {
		haveChecks = append(haveChecks, c.Name)
	}

	var errs []error
	for _, n := range names {
		if !slices.Contains(haveNames, n) {
			errs = append(errs, m.errorf("no kernel %q%s; kernels: %s", n, didYouMean(n, haveNames), strings.Join(haveNames, ", ")))
		}
	}
	for _, a := range arches {
		if !slices.Contains(haveArches, a) {
			errs = append(errs, m.errorf("no kernel runs on %s; arches: %s", a, joinArches(haveArches)))
		}
	}
	for _, c := range checks {
		if !slices.Contains(haveChecks, c) {
			errs = append(errs, m.errorf("no check %q%s; checks: %s", c, didYouMean(c, haveChecks), strings.Join(haveChecks, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	out := &Matrix{Path: m.Path, Defaults: m.Defaults}
	for _, k := range m.Kernels {
		if len(names) > 0 && !slices.Contains(names, k.Name) {
			continue
		}
		if len(arches) > 0 {
			k.Arch = slices.DeleteFunc(slices.Clone(k.Arch), func(a kernels.Arch) bool {
				return !slices.Contains(arches, a)
			})
		} else {
			k.Arch = slices.Clone(k.Arch)
		}
		if len(k.Arch) > 0 {
			out.Kernels = append(out.Kernels, k)
		}
	}
	if len(out.Kernels) == 0 {
		return nil, m.errorf("no selected kernel (%s) runs on %s", strings.Join(names, ", "), joinArches(arches))
	}
	for _, c := range m.Checks {
		if len(checks) == 0 || slices.Contains(checks, c.Name) {
			out.Checks = append(out.Checks, c)
		}
	}
	return out, nil
}

func (m *Matrix) errorf(format string, args ...any) error {
	return &MatrixError{File: m.Path, Msg: fmt.Sprintf(format, args...)}
}

func joinArches(arches []kernels.Arch) string {
	s := make([]string, len(arches))
	for i, a := range arches {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// LoadMatrix reads and parses the matrix file at path.
func LoadMatrix(path string) (*Matrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (give the matrix file: vmrunner run FILE; the default is ./matrix.yaml)", ErrBadMatrix, err)
	}
	return ParseMatrix(path, data)
}

// ParseMatrix parses a matrix from data; file names it in errors.
//
// The matrix is checked strictly: unknown keys, values of the wrong type,
// missing or duplicate names and the like are all reported, each as a
// *MatrixError with its position, joined with errors.Join in file order.
func ParseMatrix(file string, data []byte) (*Matrix, error) {
	p := &matrixParser{file: file}
	m := p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// The schema of matrix.yaml, for decodeStrict. Values that need more than a
// type check are types with their own UnmarshalYAML.
type (
	matrixYAML struct {
		Defaults defaultsYAML `yaml:"defaults"`
		Kernels  []kernelYAML `yaml:"kernels"`
		Checks   []yaml.Node  `yaml:"checks"` // decoded by matrixParser.checks
	}

	defaultsYAML struct {
		Memory       yamlSize     `yaml:"memory"`
		CPUs         yamlCPUs     `yaml:"cpus"`
		Timeout      yamlDuration `yaml:"timeout"`
		CheckTimeout yamlDuration `yaml:"check_timeout"`
	}

	kernelYAML struct {
		Name   string       `yaml:"name"`
		Arch   yamlArches   `yaml:"arch"`
		Source kernels.Spec `yaml:"source"`
		Memory yamlSize     `yaml:"memory"`
		CPUs   yamlCPUs     `yaml:"cpus"`
	}
)

type matrixParser struct {
	file string
	errs []*MatrixError
}

func (p *matrixParser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &MatrixError{File: p.file, Line: max(n.Line, 1), Col: max(n.Column, 1), Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems found, sorted by position, or nil.
func (p *matrixParser) err() error {
	slices.SortStableFunc(p.errs, func(a, b *MatrixError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	p.errs = slices.CompactFunc(p.errs, func(a, b *MatrixError) bool { return *a == *b })
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (p *matrixParser) parse(data []byte) *Matrix {
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
	if isNullNode(root) {
		p.errorf(root, "empty matrix: expected keys defaults, kernels, checks")
		return nil
	}

	var raw matrixYAML
	for _, prob := range decodeStrict(root, reflect.ValueOf(&raw).Elem(), "") {
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
	}}
	p.kernels(root, raw.Kernels, m)
	p.checks(root, m)
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
	p.errs = append(p.errs, &MatrixError{File: p.file, Line: line, Col: col, Msg: "invalid YAML: " + msg})
}

// kernels checks what decodeStrict cannot see: names present, safe and
// unique, and one source per kernel.
func (p *matrixParser) kernels(root *yaml.Node, raw []kernelYAML, m *Matrix) {
	list := yamlValue(root, "kernels")
	switch {
	case isNullNode(list):
		p.errorf(root, `missing kernels: expected a list like - {name: "6.1", source: {debian: {suite: bookworm}}}`)
		return
	case list.Kind != yaml.SequenceNode:
		return // reported by decodeStrict
	case len(list.Content) == 0:
		p.errorf(list, "kernels: expected at least one kernel")
		return
	}

	seen := make(map[string]*yaml.Node)
	for i, k := range raw {
		n := resolveAlias(list.Content[i])
		path := fmt.Sprintf("kernels[%d]", i)
		if isNullNode(n) {
			p.errorf(n, "%s: expected a kernel, got nothing", path)
			continue
		}
		if n.Kind != yaml.MappingNode {
			continue // reported by decodeStrict
		}

		name := yamlValue(n, "name")
		switch {
		case misspelled(n, "name"):
			// reported by decodeStrict as an unknown key
		case isNullNode(name) || (name.Kind == yaml.ScalarNode && k.Name == ""):
			p.errorf(yamlPos(n, "name"), "%s: missing name", path)
		case name.Kind != yaml.ScalarNode:
			// reported by decodeStrict
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
// what decodeStrict cannot check in it.
func (p *matrixParser) source(n *yaml.Node, spec *kernels.Spec, path string) {
	kinds := specKinds()
	src := yamlValue(n, "source")
	if isNullNode(src) {
		if misspelled(n, "source") {
			return // reported by decodeStrict as an unknown key
		}
		p.errorf(yamlPos(n, "source"), "%s: missing source; expected one of: %s", path, strings.Join(kinds, ", "))
		return
	}
	if src.Kind != yaml.MappingNode {
		return // reported by decodeStrict
	}
	path += ".source"
	p.oneKind(src, kinds, path)

	if key, deb := yamlEntry(src, "debian"); key != nil && (isNullNode(deb) || deb.Kind == yaml.MappingNode) {
		if isNullNode(deb) {
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
	for _, key := range yamlKeys(src) {
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
	suite := yamlValue(n, "suite")
	switch {
	case d.Suite == "":
		p.errorf(yamlPos(n, "suite"), "%s: missing suite; expected a Debian suite like bookworm", path)
	case !isSafeName(d.Suite):
		p.errorf(suite, "%s.suite: expected a Debian suite like bookworm, got %q", path, d.Suite)
	}
	if flavour := yamlValue(n, "flavour"); d.Flavour != "" && !isSafeName(d.Flavour) {
		p.errorf(flavour, "%s.flavour: expected a kernel flavour like amd64 or cloud-arm64, got %q", path, d.Flavour)
	}
}

// specKinds lists the kinds of kernel source, as spelled in matrix.yaml.
func specKinds() []string {
	var kinds []string
	for _, f := range yamlFields(reflect.TypeFor[kernels.Spec]()) {
		kinds = append(kinds, f.name)
	}
	return kinds
}

// checks decodes the checks list: every item is NAME or NAME: {params}.
func (p *matrixParser) checks(root *yaml.Node, m *Matrix) {
	list := yamlValue(root, "checks")
	switch {
	case isNullNode(list):
		p.errorf(root, "missing checks: expected a list like - btf: {require: [task_struct]}")
		return
	case list.Kind != yaml.SequenceNode:
		return // reported by decodeStrict
	case len(list.Content) == 0:
		p.errorf(list, "checks: expected at least one check; known checks: %s", strings.Join(knownChecks(), ", "))
		return
	}

	seen := make(map[string]*yaml.Node)
	for i, n := range list.Content {
		c, name, ok := p.check(resolveAlias(n), fmt.Sprintf("checks[%d]", i), m.Defaults.CheckTimeout)
		if !ok {
			continue
		}
		if first := seen[c.Name]; first != nil {
			p.errorf(name, "checks[%d]: duplicate check %q (first at line %d)", i, c.Name, first.Line)
			continue
		}
		seen[c.Name] = name
		m.Checks = append(m.Checks, c)
	}
}

func (p *matrixParser) check(n *yaml.Node, path string, timeout time.Duration) (Check, *yaml.Node, bool) {
	var name, params *yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode && !isNullNode(n):
		name = n
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Kind == yaml.ScalarNode:
		name, params = n.Content[0], resolveAlias(n.Content[1])
	case n.Kind == yaml.MappingNode && len(n.Content) > 2:
		p.errorf(n, "%s: expected one check per list item, got keys %s; indent parameters under the check name",
			path, strings.Join(yamlKeys(n), ", "))
		return Check{}, nil, false
	default:
		p.errorf(n, "%s: expected a check name or NAME: {parameters}, got %s", path, describeNode(n))
		return Check{}, nil, false
	}

	typ, ok := checkParams[name.Value]
	if !ok {
		known := knownChecks()
		p.errorf(name, "%s: unknown check %q%s; known checks: %s", path, name.Value, didYouMean(name.Value, known), strings.Join(known, ", "))
		return Check{}, nil, false
	}
	c := Check{Name: name.Value, Timeout: timeout}
	if isNullNode(params) {
		if r, ok := reflect.New(typ).Interface().(paramsResolver); ok {
			env := &paramsEnv{dir: filepath.Dir(p.file), path: joinPath(path, name.Value), p: p}
			r.resolve(env, name)
			c.Files = env.files
		}
		return c, name, true
	}

	// Decode the parameters together with the reserved timeout key, so
	// that an unknown key lists both as allowed.
	path = joinPath(path, name.Value)
	wrapped := reflect.StructOf([]reflect.StructField{
		{Name: "Params", Type: typ, Tag: `yaml:",inline"`},
		{Name: "Timeout", Type: reflect.TypeFor[yamlDuration](), Tag: `yaml:"timeout"`},
	})
	v := reflect.New(wrapped).Elem()
	problems := decodeStrict(params, v, path)
	for _, prob := range problems {
		p.errorf(prob.Node, "%s", prob.Msg)
	}
	if len(problems) > 0 || params.Kind != yaml.MappingNode {
		return c, name, false
	}

	if d := time.Duration(v.Field(1).Interface().(yamlDuration)); d != 0 {
		c.Timeout = d
	}
	if r, ok := v.Field(0).Addr().Interface().(paramsResolver); ok {
		env := &paramsEnv{dir: filepath.Dir(p.file), path: path, p: p}
		r.resolve(env, params)
		c.Files = env.files
	}
	if slices.ContainsFunc(yamlKeys(params), func(k string) bool { return k != "timeout" }) {
		js, err := json.Marshal(v.Field(0).Interface())
		if err != nil {
			p.errorf(params, "%s: encode parameters: %v", path, err)
			return c, name, false
		}
		c.Params = js
	}
	return c, name, true
}

// misspelled reports whether mapping n has a key that looks like a typo for
// key; decodeStrict has reported it, so "missing key" would be noise.
func misspelled(n *yaml.Node, key string) bool {
	return slices.ContainsFunc(yamlKeys(n), func(k string) bool {
		return k != key && didYouMean(k, []string{key}) != ""
	})
}

func knownChecks() []string {
	names := make([]string, 0, len(checkParams))
	for name := range checkParams {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

var safeNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// isSafeName reports whether s can be used as one path element.
func isSafeName(s string) bool {
	return safeNameRE.MatchString(s) && s != "." && s != ".."
}

// yamlSize is a memory size in MiB, written 512M, 768MiB, 1G or 2GiB.
type yamlSize int

var sizeRE = regexp.MustCompile(`^([0-9]+) ?(?i:(m|mib|g|gib))$`)

// maxMemoryMiB bounds memory sizes, mostly to keep arithmetic from overflowing.
const maxMemoryMiB = 1 << 20

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *yamlSize) UnmarshalYAML(n *yaml.Node) error {
	const want = "expected a size like 512M or 1G"
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", want, describeNode(n))
	}
	m := sizeRE.FindStringSubmatch(n.Value)
	if m == nil {
		if _, err := strconv.Atoi(n.Value); err == nil {
			return fmt.Errorf("%s, got %s (add a unit)", want, describeNode(n))
		}
		return fmt.Errorf("%s, got %s", want, describeNode(n))
	}
	v, err := strconv.Atoi(m[1])
	if strings.HasPrefix(strings.ToLower(m[2]), "g") {
		v *= 1024
	}
	if err != nil || v <= 0 || v > maxMemoryMiB {
		return fmt.Errorf("%s, between 1M and %dG, got %s", want, maxMemoryMiB/1024, describeNode(n))
	}
	*s = yamlSize(v)
	return nil
}

// yamlDuration is a positive Go duration: 90s, 10m, 1h30m.
type yamlDuration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	const want = "expected a duration like 10m or 90s"
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", want, describeNode(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("%s, got %s", want, describeNode(n))
	}
	*d = yamlDuration(v)
	return nil
}

// yamlCPUs is a number of virtual CPUs.
type yamlCPUs int

// maxCPUs bounds "cpus"; QEMU's microvm and virt machines allow more, but
// a test VM with more is a typo.
const maxCPUs = 64

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *yamlCPUs) UnmarshalYAML(n *yaml.Node) error {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil || v < 1 || v > maxCPUs {
		return fmt.Errorf("expected a number of CPUs from 1 to %d, got %s", maxCPUs, describeNode(n))
	}
	*c = yamlCPUs(v)
	return nil
}

// yamlArches is a list of architectures, or a single one as a scalar.
type yamlArches []kernels.Arch

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *yamlArches) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return fmt.Errorf("expected at least one arch (%s)", joinArches(kernels.Arches))
		}
		items = n.Content
	default:
		return fmt.Errorf("expected an arch or a list of arches (%s), got %s", joinArches(kernels.Arches), describeNode(n))
	}

	var arches []kernels.Arch
	var errs []error
	for _, item := range items {
		item = resolveAlias(item)
		if item.Kind != yaml.ScalarNode {
			errs = append(errs, errAtNode(item, "expected an arch (%s), got %s", joinArches(kernels.Arches), describeNode(item)))
			continue
		}
		arch, err := kernels.ParseArch(item.Value)
		switch {
		case err != nil:
			errs = append(errs, errAtNode(item, "%v", err))
		case slices.Contains(arches, arch):
			errs = append(errs, errAtNode(item, "arch %s listed twice", arch))
		default:
			arches = append(arches, arch)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*a = arches
	return nil
}
