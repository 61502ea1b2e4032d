package yamlstrict

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

type strictInner struct {
	A int `yaml:"a"`
}

type strictOdd struct{}

// UnmarshalYAML fails at the second item of a list, and twice for "two".
func (*strictOdd) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.SequenceNode && len(n.Content) > 1:
		return ErrorAt(n.Content[1], "bad item")
	case n.Value == "two":
		return errors.Join(errors.New("first"), ErrorAt(n, "second"))
	case n.Value == "bad":
		return errors.New("plain")
	}
	return nil
}

type strictTarget struct {
	Name    string            `yaml:"name"`
	Count   int               `yaml:"count,omitempty"`
	On      bool              `yaml:"on"`
	Ptr     *strictInner      `yaml:"ptr"`
	List    []strictInner     `yaml:"list"`
	Map     map[string]int    `yaml:"map"`
	Inline  strictInner       `yaml:",inline"`
	Odd     strictOdd         `yaml:"odd"`
	Raw     yaml.Node         `yaml:"raw"`
	Skipped int               `yaml:"-"`
	Untag   string            // no tag: key "untag"
	Any     map[string]string `yaml:"any"`
}

func decodeTest(t *testing.T, src string) (strictTarget, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var v strictTarget
	var got []string
	for _, p := range Decode(doc.Content[0], reflect.ValueOf(&v).Elem(), "t") {
		got = append(got, fmt.Sprintf("%d:%d: %s", p.Node.Line, p.Node.Column, p.Msg))
	}
	return v, got
}

func TestDecodeStrict(t *testing.T) {
	v, probs := decodeTest(t, `
name: 6.10
count: 3
on: true
ptr: {a: 1}
list: [{a: 2}, {a: 3}]
map: {x: 4}
a: 5
raw: [anything, {goes: here}]
untag: u
odd: fine
`)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	equal(t, "name", v.Name, "6.10")
	equal(t, "count", v.Count, 3)
	equal(t, "on", v.On, true)
	equal(t, "ptr", *v.Ptr, strictInner{1})
	equal(t, "list", v.List, []strictInner{{2}, {3}})
	equal(t, "map", v.Map, map[string]int{"x": 4})
	equal(t, "inline", v.Inline, strictInner{5})
	equal(t, "raw", v.Raw.Kind, yaml.SequenceNode)
	equal(t, "untag", v.Untag, "u")
}

func TestDecodeStrictNullLeavesZero(t *testing.T) {
	v, probs := decodeTest(t, "name:\nptr: ~\nlist:\n")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if v.Name != "" || v.Ptr != nil || v.List != nil {
		t.Errorf("null set a value: %+v", v)
	}
}

func TestDecodeStrictProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"nmae: x", []string{`1:1: t: unknown key "nmae" (did you mean "name"?); allowed keys: name, count, on, ptr, list, map, a, odd, raw, untag, any`}},
		{"count: many", []string{`1:8: t.count: expected an integer, got "many"`}},
		{"on: maybe", []string{`1:5: t.on: expected true or false, got "maybe"`}},
		{"ptr: {a: 1, b: 2}", []string{`1:13: t.ptr: unknown key "b"; allowed keys: a`}},
		{"ptr: [1]", []string{`1:6: t.ptr: expected a mapping with keys a, got a list`}},
		{"list: [{a: x}, 7]", []string{`1:12: t.list[0].a: expected an integer, got "x"`, `1:16: t.list[1]: expected a mapping with keys a, got "7"`}},
		{"list: {a: 1}", []string{`1:7: t.list: expected a list, got a mapping`}},
		{"map: {x: y}", []string{`1:10: t.map.x: expected an integer, got "y"`}},
		{"map: [1]", []string{`1:6: t.map: expected a mapping, got a list`}},
		{"name: a\nname: b", []string{`2:1: t: duplicate key "name" (first at line 1)`}},
		{"name: [a]", []string{`1:7: t.name: expected a string, got a list`}},
		{"skipped: 1", []string{`1:1: t: unknown key "skipped"; allowed keys: name, count, on, ptr, list, map, a, odd, raw, untag, any`}},
		{"odd: [ok, bad]", []string{`1:11: t.odd: bad item`}},
		{"odd: two", []string{`1:6: t.odd: first`, `1:6: t.odd: second`}},
		{"odd: bad", []string{`1:6: t.odd: plain`}},
		{"? [a]\n: 1", []string{`1:3: t: expected a key, got a list`}},
		{"a: 1\ncount: x\nnope: 1", []string{`2:8: t.count: expected an integer, got "x"`, `3:1: t: unknown key "nope"; allowed keys: name, count, on, ptr, list, map, a, odd, raw, untag, any`}},
	} {
		_, got := decodeTest(t, tc.src)
		equal(t, tc.src, got, tc.want)
	}
}

func TestDecodeStrictAlias(t *testing.T) {
	v, probs := decodeTest(t, "ptr: &p {a: 9}\nlist: [*p, *p]\n")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	equal(t, "list", v.List, []strictInner{{9}, {9}})
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// textLevel decodes "low" or "high" as encoding.TextUnmarshaler.
type textLevel int

func (l *textLevel) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return errors.New("expected low or high")
	}
	return nil
}

func TestDecodeStrictTextUnmarshaler(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want textLevel
		prob string
	}{
		{"level: high", 2, ""},
		{"level: loud", 0, `1:8: t.level: expected low or high, got "loud"`},
		{"level: [low]", 0, `1:8: t.level: expected a scalar, got a list`},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.src), &doc); err != nil {
			t.Fatal(err)
		}
		var v struct {
			Level textLevel `yaml:"level"`
		}
		var got []string
		for _, p := range Decode(doc.Content[0], reflect.ValueOf(&v).Elem(), "t") {
			got = append(got, fmt.Sprintf("%d:%d: %s", p.Node.Line, p.Node.Column, p.Msg))
		}
		equal(t, tc.src, v.Level, tc.want)
		if tc.prob == "" {
			equal(t, tc.src, len(got), 0)
		} else {
			equal(t, tc.src, got, []string{tc.prob})
		}
	}
}
