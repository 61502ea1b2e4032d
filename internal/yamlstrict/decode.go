// Package yamlstrict decodes YAML strictly and reports every problem with
// its line and column, all in one pass.
//
// It is hand-written because yaml.v3 does not give us what matrix.yaml
// promises: Decoder.KnownFields stops at the first unknown key, reports a
// line but never a column, and does not say which keys were allowed; its type
// errors are likewise "line N: cannot unmarshal ...". Walking the *yaml.Node
// tree against the target's yaml struct tags gives the position of every
// problem, all problems in one pass, and the list of allowed keys.
package yamlstrict

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/spelling"
)

// Problem is one thing wrong with a YAML document, found at Node.
type Problem struct {
	Node *yaml.Node
	Msg  string
}

// nodeError lets a yaml.Unmarshaler place its error at a node inside the
// value it was given, for example at the second item of a list.
type nodeError struct {
	node *yaml.Node
	msg  string
}

func (e *nodeError) Error() string { return e.msg }

// ErrorAt returns an error that Decode reports at n.
func ErrorAt(n *yaml.Node, format string, args ...any) error {
	return &nodeError{n, fmt.Sprintf(format, args...)}
}

var (
	yamlNodeType        = reflect.TypeFor[yaml.Node]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// Decode decodes n into v, which must be settable, and returns every
// problem it found rather than stopping at the first. path names n in
// messages ("kernels[0].source"); it may be empty for the document root.
//
// It follows the yaml tags of struct fields (a missing tag means the
// lower-cased field name, "-" skips the field, ",inline" merges a struct's
// keys into its parent's). An unknown or duplicate key, or a value of the
// wrong kind, is a problem. A null value leaves the target untouched. A type
// implementing yaml.Unmarshaler decodes itself; its error is reported at the
// value, or at the node given to ErrorAt, and an error joined with
// errors.Join is reported once per wrapped error. A type implementing
// encoding.TextUnmarshaler decodes a scalar's text; its error says what was
// expected, and the problem adds what was found. Merge keys ("<<") are not
// supported.
func Decode(n *yaml.Node, v reflect.Value, path string) []Problem {
	var d strictDecoder
	d.decode(n, v, path)
	return d.problems
}

type strictDecoder struct {
	problems []Problem
}

func (d *strictDecoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.problems = append(d.problems, Problem{n, msg})
}

func (d *strictDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = Resolve(n)
	if IsNull(n) {
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
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a scalar, got %s", Describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v, got %s", err, Describe(n))
		}
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
			d.errorf(n, path, "expected a list, got %s", Describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)

	case reflect.Map:
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.errorf(n, path, "expected a mapping, got %s", Describe(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := make(map[string]*yaml.Node)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := Resolve(n.Content[i]), n.Content[i+1]
			if !d.key(k, seen, path) {
				continue
			}
			elem := reflect.New(t.Elem()).Elem()
			d.decode(val, elem, JoinPath(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
		}
		v.Set(m)

	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", describeType(t), Describe(n))
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
			d.errorf(n, path, "expected %s, got %s", describeType(t), Describe(n))
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
	var ne *nodeError
	if errors.As(err, &ne) {
		d.errorf(ne.node, path, "%s", ne.msg)
		return
	}
	d.errorf(n, path, "%s", err)
}

// key checks a mapping key: it must be a scalar and not repeat an earlier one.
func (d *strictDecoder) key(k *yaml.Node, seen map[string]*yaml.Node, path string) bool {
	if k.Kind != yaml.ScalarNode {
		d.errorf(k, path, "expected a key, got %s", Describe(k))
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
	fields := structFields(v.Type())
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	allowed := strings.Join(names, ", ")

	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with keys %s, got %s", allowed, Describe(n))
		return
	}

	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := Resolve(n.Content[i]), n.Content[i+1]
		if !d.key(k, seen, path) {
			continue
		}
		i := fieldIndex(fields, k.Value)
		if i < 0 {
			d.errorf(k, path, "unknown key %q%s; allowed keys: %s", k.Value, spelling.DidYouMean(k.Value, names), allowed)
			continue
		}
		d.decode(val, fieldAt(v, fields[i].index), JoinPath(path, k.Value))
	}
}

// field is a key of a struct as spelled in YAML.
type field struct {
	name  string
	index []int
}

// FieldNames lists the keys of struct type t in declaration order, as
// Decode reads them.
func FieldNames(t reflect.Type) []string {
	var names []string
	for _, f := range structFields(t) {
		names = append(names, f.name)
	}
	return names
}

// structFields lists the keys of struct type t in declaration order.
func structFields(t reflect.Type) []field {
	var fields []field
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
			for _, inner := range structFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				fields = append(fields, inner)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, field{name, []int{i}})
	}
	return fields
}

func fieldIndex(fields []field, name string) int {
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

// Keys returns the keys of mapping n in order, or nil if n is no mapping.
func Keys(n *yaml.Node) []string {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// Value returns the value of key in mapping n, or nil if n is no mapping
// or has no such key.
func Value(n *yaml.Node, key string) *yaml.Node {
	_, v := Entry(n, key)
	return v
}

// Entry returns the key node and value node of key in mapping n, or nils.
func Entry(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k, Resolve(n.Content[i+1])
		}
	}
	return nil, nil
}

// Pos returns the node to report a problem with key of mapping n at:
// its value, or the key if the value is null, or n if the key is absent.
func Pos(n *yaml.Node, key string) *yaml.Node {
	k, v := Entry(n, key)
	switch {
	case !IsNull(v):
		return v
	case k != nil:
		return k
	}
	return n
}

func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is absent or an explicit null ("key:", "~").
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Describe says what a node holds, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	n = Resolve(n)
	switch {
	case IsNull(n):
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
