package matrix

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/internal/spelling"
	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/protocol"
)

func init() { registerCheck[featuresParams](protocol.FeaturesCheck.Def()) }

// featuresParams is the "features" check as written in matrix.yaml:
//
//	features: {programs: all, maps: all, helpers: [ringbuf_output, loop]}
//
// programs and maps take "all", "none" or a list of names; helpers a list
// (default: every helper of bpfprobe.Features). Names are checked against
// bpfprobe.Features where they are written.
type featuresParams struct {
	Programs featureNames `yaml:"programs"`
	Maps     featureNames `yaml:"maps"`
	Helpers  featureNames `yaml:"helpers"`
}

// MarshalJSON sends what the guest reads, protocol.FeaturesParams.
func (p featuresParams) MarshalJSON() ([]byte, error) {
	return json.Marshal(protocol.FeaturesParams{Programs: p.Programs.names, Maps: p.Maps.names, Helpers: p.Helpers.names})
}

// featureNames is "all", "none" or a list of feature names of one kind; the
// kind comes from the key it is under.
type featureNames struct {
	names []string
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *featureNames) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && (n.Value == "all" || n.Value == "none"):
		f.names = []string{n.Value}
		return nil
	case n.Kind != yaml.SequenceNode:
		return fmt.Errorf(`expected "all", "none" or a list of names, got %s`, yamlstrict.Describe(n))
	}
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			return yamlstrict.ErrorAt(item, "expected a name, got %s", yamlstrict.Describe(item))
		}
		f.names = append(f.names, item.Value)
	}
	return nil
}

// resolve checks every name against the table of its kind.
func (p *featuresParams) resolve(env *paramsEnv, n *yaml.Node) {
	for _, k := range []struct {
		key  string
		kind bpfprobe.Kind
		list featureNames
	}{{"programs", bpfprobe.KindProgram, p.Programs}, {"maps", bpfprobe.KindMap, p.Maps}, {"helpers", bpfprobe.KindHelper, p.Helpers}} {
		node := yamlstrict.Value(n, k.key)
		known := bpfprobe.Names(k.kind)
		for i, name := range k.list.names {
			if name == "all" || name == "none" {
				continue
			}
			if !slices.Contains(known, name) {
				at := node
				if node != nil && node.Kind == yaml.SequenceNode && i < len(node.Content) {
					at = node.Content[i]
				}
				env.errorf(at, "%s: unknown %s %q%s; known: %s", k.key, k.kind, name, spelling.DidYouMean(name, known), strings.Join(known, ", "))
			}
		}
	}
}
