package vmrunner

// This file holds a strict YAML decoder that reports every problem with its
// line and column.
//
// It is hand-written because yaml.v3 does not give us what matrix.yaml
// promises: Decoder.KnownFields stops at the first unknown key, reports a
// line but never a column, and does not say which keys were allowed; its type
// errors are likewise "line N: cannot unmarshal ...". Walking the *yaml.Node
// tree against the target's yaml struct tags gives the position of every
// problem, all problems in one pass, and the list of allowed keys.

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlProblem is one thing wrong with a YAML document, found at Node.
type yamlProblem struct {
	Node *yaml.Node
	Msg  string
}

// yamlNodeError lets a yaml.Unmarshaler place its error at a node inside the
// value it was given, for example at the second item of a list.
type yamlNodeError struct {
	node *yaml.Node
	msg  string
}

func (e *yamlNodeError) Error() string { return e.msg }

// errAtNode returns an error that decodeStrict reports at n.
func errAtNode(n *yaml.Node, format string, args ...any) error {
	return &yamlNodeError{n, fmt.Sprintf(format, args...)}
}

var (
	yamlNodeType        = reflect.TypeFor[yaml.Node]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// decodeStrict decodes n into v, which must be settable, and returns every
// problem it found rather than stopping at the first. path names n in
// messages ("kernels[0].source"); it may be empty for the document root.
//
// It follows the yaml tags of struct fields (a missing tag means the
// lower-cased field name, "-" skips the field, ",inline" merges a struct's
// keys into its parent's). An unknown or duplicate key, or a value of the
// wrong kind, is a problem. A null value leaves the target untouched. A type
// implementing yaml.Unmarshaler decodes itself; its error is reported at the
// value, or at the node given to errAtNode, and an error joined with
// errors.Join is reported once per wrapped error. Merge keys ("<<") are not
// supported.
func decodeStrict(n *yaml.Node, v reflect.Value, path string) []yamlProblem {
	var d strictDecoder
	d.decode(n, v, path)
	return d.problems
}

type strictDecoder struct {
	problems []yamlProblem
}

func (d *strictDecoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.problems = append(d.problems, yamlProblem{n, msg})
}

func (d *strictDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolveAlias(n)
	if isNullNode(n) {
		return
	}

	t := v.Type()
	if t == yamlNodeType {
		v.Set(reflect.ValueOf(n).Elem())
		return
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshalerType) {
		err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
		d.unmarshalerError(n, path, err)
		return
	}

	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path)

	case reflect.Struct:
		d.mapping(n, v, path)

	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", describeNode(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)

	case reflect.Map:
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.errorf(n, path, "expected a mapping, got %s", describeNode(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := make(map[string]*yaml.Node)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := resolveAlias(n.Content[i]), n.Content[i+1]
			if !d.key(k, seen, path) {
				continue
			}
			elem := reflect.New(t.Elem()).Elem()
			d.decode(val, elem, joinPath(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
		}
		v.Set(m)

	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", describeType(t), describeNode(n))
			return
		}
		if t.Kind() == reflect.String {
			// Keep the text as written: an unquoted 6.10 is the
			// string "6.10", not the number 6.1.
			v.SetString(n.Value)
			return
		}
		p := reflect.New(t)
		if err := n.Decode(p.Interface()); err != nil {
			d.errorf(n, path, "expected %s, got %s", describeType(t), describeNode(n))
			return
		}
		v.Set(p.Elem())
	}
}

func (d *strictDecoder) unmarshalerError(n *yaml.Node, path string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, err := range joined.Unwrap() {
			d.unmarshalerError(n, path, err)
		}
		return
	}
	var ne *yamlNodeError
	if errors.As(err, &ne) {
		d.errorf(ne.node, path, "%s", ne.msg)
		return
	}
	d.errorf(n, path, "%s", err)
}

// key checks a mapping key: it must be a scalar and not repeat an earlier one.
func (d *strictDecoder) key(k *yaml.Node, seen map[string]*yaml.Node, path string) bool {
	if k.Kind != yaml.ScalarNode {
		d.errorf(k, path, "expected a key, got %s", describeNode(k))
		return false
	}
	if first := seen[k.Value]; first != nil {
		d.errorf(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
		return false
	}
	seen[k.Value] = k
	return true
}

func (d *strictDecoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields := yamlFields(v.Type())
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	allowed := strings.Join(names, ", ")

	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with keys %s, got %s", allowed, describeNode(n))
		return
	}

	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if !d.key(k, seen, path) {
			continue
		}
		i := fieldIndex(fields, k.Value)
		if i < 0 {
			d.errorf(k, path, "unknown key %q%s; allowed keys: %s", k.Value, didYouMean(k.Value, names), allowed)
			continue
		}
		d.decode(val, fieldAt(v, fields[i].index), joinPath(path, k.Value))
	}
}

// yamlField is a key of a struct as spelled in YAML.
type yamlField struct {
	name  string
	index []int
}

// yamlFields lists the keys of struct type t in declaration order.
func yamlFields(t reflect.Type) []yamlField {
	var fields []yamlField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, inner := range yamlFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				fields = append(fields, inner)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, yamlField{name, []int{i}})
	}
	return fields
}

func fieldIndex(fields []yamlField, name string) int {
	for i, f := range fields {
		if f.name == name {
			return i
		}
	}
	return -1
}

func fieldAt(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

// yamlKeys returns the keys of mapping n in order, or nil if n is no mapping.
func yamlKeys(n *yaml.Node) []string {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// yamlValue returns the value of key in mapping n, or nil if n is no mapping
// or has no such key.
func yamlValue(n *yaml.Node, key string) *yaml.Node {
	_, v := yamlEntry(n, key)
	return v
}

// yamlEntry returns the key node and value node of key in mapping n, or nils.
func yamlEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k, resolveAlias(n.Content[i+1])
		}
	}
	return nil, nil
}

// yamlPos returns the node to report a problem with key of mapping n at:
// its value, or the key if the value is null, or n if the key is absent.
func yamlPos(n *yaml.Node, key string) *yaml.Node {
	k, v := yamlEntry(n, key)
	switch {
	case !isNullNode(v):
		return v
	case k != nil:
		return k
	}
	return n
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNullNode reports whether n is absent or an explicit null ("key:", "~").
func isNullNode(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describeNode says what a node holds, for "expected X, got Y" messages.
func describeNode(n *yaml.Node) string {
	n = resolveAlias(n)
	switch {
	case isNullNode(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%q", v)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to
// word, or "" if none is close enough to be a plausible typo.
func didYouMean(word string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	// Allow about one edit per three characters, at most two.
	if best == "" || bestDist > 2 || bestDist*3 > len(word) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: the Levenshtein distance where swapping two adjacent bytes
// ("memroy") is one edit.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
