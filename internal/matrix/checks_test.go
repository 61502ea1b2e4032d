package matrix

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/protocol"
)

// TestHostCheckTable checks the host's side of protocol's check table: every
// check has a host file that registered it, its matrix.yaml keys are keys of
// the guest's parameters, and its defaults written in matrix.yaml reach the
// guest unchanged, every key of them. The guest's side is
// guest.TestAgentCheckTable and workloadcheck.TestWorkloadCheckTable.
func TestHostCheckTable(t *testing.T) {
	equal(t, "checks", knownChecks(), protocol.CheckNames())

	for _, def := range protocol.Checks() {
		t.Run(def.Name, func(t *testing.T) {
			hc, ok := hostChecks[def.Name]
			if !ok {
				t.Fatalf("no host file registers check %q (registerCheck)", def.Name)
			}
			guestKeys := jsonKeys(def.Params)
			for _, key := range yamlstrict.FieldNames(hc.params) {
				if !slices.Contains(guestKeys, key) {
					t.Errorf("matrix.yaml key %q is not a key of the guest's %s (%v)", key, def.Params, guestKeys)
				}
			}

			// The defaults, as matrix.yaml would write them (JSON is YAML).
			js, _ := json.Marshal(def.Defaults())
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(`{"`+def.Name+`": `+string(js)+`}`), &n); err != nil {
				t.Fatal(err)
			}
			p := &matrixParser{file: filepath.Join(t.TempDir(), "m.yaml")}
			c, _, ok := p.check(n.Content[0], "checks[0]", time.Minute)
			if !ok {
				t.Fatalf("matrix.yaml cannot write the defaults %s: %v", js, p.err())
			}
			// Parameters without a default (verifier objects, beyla
			// binary, selftest action) are reported missing, and only then.
			if err := def.Validate(nil); (err == nil) != (p.err() == nil) {
				t.Errorf("defaults valid: %v; written in matrix.yaml: %v", err, p.err())
			}

			// Every key written is sent: none is lost on the way to the
			// guest's form, and the guest reads the same values.
			var want map[string]json.RawMessage
			_ = json.Unmarshal(js, &want)
			sent := map[string]json.RawMessage{}
			if c.Params != nil { // nil: no key given
				if err := json.Unmarshal(c.Params, &sent); err != nil {
					t.Fatalf("params %s: %v", c.Params, err)
				}
			}
			equal(t, "keys sent", slices.Sorted(maps.Keys(sent)), slices.Sorted(maps.Keys(want)))
			got, err := def.Decode(c.Params)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, def.Defaults()) {
				t.Errorf("the defaults written in matrix.yaml reach the guest as\n %s\nnot\n %s", c.Params, js)
			}
		})
	}
}
