package vmrunner

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/protocol"
)

// GuestObjectDir is where the verifier check's objects are in the guest.
const GuestObjectDir = "/vmrunner/objects"

func init() { registerCheck[verifierParams](protocol.VerifierCheck.Def()) }

// verifierParams is the "verifier" check as written in matrix.yaml:
//
//	verifier:
//	  objects: [testdata/bpf/*.o]      # paths or globs, relative to the matrix file
//	  programs: [uses_bpf_loop]        # optional: only these
//	  expect: {uses_bpf_loop: {fail: ["<5.17"]}}
//
// It is sent to the guest as protocol.VerifierParams, with the objects'
// guest paths.
type verifierParams struct {
	Objects  []string                  `yaml:"objects"`
	Programs []string                  `yaml:"programs"`
	Expect   map[string]verifierExpect `yaml:"expect"`
	Attach   bool                      `yaml:"attach"`

	guest []string // resolved guest paths
}

type verifierExpect struct {
	Fail []versionRange `yaml:"fail"`
}

// versionRange is a bpfprobe.Range, checked where it is written.
type versionRange string

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *versionRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a kernel version range like \"<5.17\", got %s", yamlstrict.Describe(n))
	}
	if _, err := bpfprobe.ParseRange(n.Value); err != nil {
		return fmt.Errorf("%q: expected <V, <=V, >V, >=V, =V or V (a whole series), V like 5.17 or 5.10.0", n.Value)
	}
	*r = versionRange(n.Value)
	return nil
}

// MarshalJSON sends what the guest reads, protocol.VerifierParams.
func (v verifierParams) MarshalJSON() ([]byte, error) {
	p := protocol.VerifierParams{Programs: v.Programs, Attach: v.Attach}
	for _, g := range v.guest {
		p.Objects = append(p.Objects, protocol.VerifierObject{Path: g})
	}
	if len(v.Expect) > 0 {
		p.Expect = map[string]protocol.VerifierExpect{}
		for name, e := range v.Expect {
			var fail []string
			for _, r := range e.Fail {
				fail = append(fail, string(r))
			}
			p.Expect[name] = protocol.VerifierExpect{Fail: fail}
		}
	}
	return json.Marshal(p)
}

// resolve expands the object globs relative to the matrix file; each must
// match at least one file, and two objects may not share a base name since
// they share a guest directory.
func (v *verifierParams) resolve(env *paramsEnv, n *yaml.Node) {
	objects := yamlstrict.Value(n, "objects")
	if yamlstrict.IsNull(objects) || len(v.Objects) == 0 {
		env.errorf(n, "missing objects: expected a list of BPF object paths or globs, relative to the matrix file")
		return
	}
	seen := map[string]string{}
	for i, pattern := range v.Objects {
		node := objects
		if objects.Kind == yaml.SequenceNode && i < len(objects.Content) {
			node = objects.Content[i]
		}
		full := pattern
		if !filepath.IsAbs(full) {
			full = filepath.Join(env.dir, pattern)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			env.errorf(node, "objects[%d]: bad glob %q: %v", i, pattern, err)
			continue
		}
		matches = slices.DeleteFunc(matches, func(m string) bool {
			fi, err := os.Stat(m)
			return err != nil || !fi.Mode().IsRegular()
		})
		if len(matches) == 0 {
			env.errorf(node, "objects[%d]: %q matches no file (relative to %s)", i, pattern, orDot(env.dir))
			continue
		}
		for _, m := range matches {
			base := filepath.Base(m)
			if first, ok := seen[base]; ok {
				if first != m {
					env.errorf(node, "objects[%d]: %s and %s have the same name; rename one", i, first, m)
				}
				continue
			}
			seen[base] = m
			guest := path.Join(GuestObjectDir, base)
			v.guest = append(v.guest, guest)
			env.files = append(env.files, GuestFile{Host: m, Guest: guest})
		}
	}
	v.checkNames(env, n)
}

// checkNames reports names in programs and expect that no object has. It
// needs every object to parse; one that does not is reported by the guest,
// per object, and the names are not checked.
func (v *verifierParams) checkNames(env *paramsEnv, n *yaml.Node) {
	have := map[string]bool{}
	for _, f := range env.files {
		spec, err := ebpf.LoadCollectionSpec(f.Host)
		if err != nil {
			return
		}
		obj := strings.TrimSuffix(filepath.Base(f.Host), ".o")
		for name := range spec.Programs {
			have[name], have[obj+"/"+name] = true, true
		}
	}
	if len(have) == 0 {
		return
	}
	known := func() string {
		var names []string
		for name := range have {
			if !strings.Contains(name, "/") {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return strings.Join(names, ", ")
	}
	if list := yamlstrict.Value(n, "programs"); list != nil && list.Kind == yaml.SequenceNode {
		for i, item := range list.Content {
			if !have[item.Value] {
				env.errorf(item, "programs[%d]: no program %q in the objects; they have: %s", i, item.Value, known())
			}
		}
	}
	if expect := yamlstrict.Value(n, "expect"); expect != nil && expect.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(expect.Content); i += 2 {
			if key := expect.Content[i]; !have[key.Value] {
				env.errorf(key, "expect: no program %q in the objects (PROGRAM or OBJECT/PROGRAM); they have: %s", key.Value, known())
			}
		}
	}
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
