package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/spelling"
	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// This file is the host's side of protocol's check table: how matrix.yaml
// spells each check's parameters, and how they become the guest's. Each
// check's host file (btf.go, features.go, verifier.go, workload.go,
// beyla.go, selftest.go) registers it with registerCheck.

// hostCheck is one check of protocol's table as matrix.yaml writes it.
type hostCheck struct {
	def *protocol.CheckDef
	// params is the type matrix.yaml's parameters decode into, strictly,
	// by its yaml tags. It is def.Params itself, or a host type whose JSON
	// encoding is def.Params (paths resolved to the guest's, for example),
	// with the same keys. The key "timeout" is reserved: it is the check's
	// timeout.
	params reflect.Type
}

// hostChecks are the checks matrix.yaml knows, by name.
var hostChecks = map[string]hostCheck{}

// registerCheck makes def known to matrix.yaml, its parameters decoded into
// Y: def.Params, or a host type that encodes to def.Params as JSON. Y may
// implement paramsResolver. It panics on a mistake of the build, which
// TestHostCheckTable catches.
func registerCheck[Y any](def *protocol.CheckDef) {
	t := reflect.TypeFor[Y]()
	if d, ok := protocol.LookupCheck(def.Name); !ok || d != def {
		panic(fmt.Sprintf("check %q is not in protocol's table", def.Name))
	}
	if _, dup := hostChecks[def.Name]; dup {
		panic(fmt.Sprintf("check %q registered twice", def.Name))
	}
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("check %q: params type %s is not a struct", def.Name, t))
	}
	hostChecks[def.Name] = hostCheck{def: def, params: t}
}

// knownChecks returns the names of the checks matrix.yaml knows, sorted.
func knownChecks() []string {
	names := make([]string, 0, len(hostChecks))
	for name := range hostChecks {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// GuestFile is a host file a check needs inside the guest, such as a BPF
// object for the verifier check.
type GuestFile struct {
	Host  string // path on the host, absolute or relative to the working directory
	Guest string // absolute path in the guest
	Exec  bool   // executable (mode 0755), else 0644
	// Named is set for a file named on the command line (repro --object):
	// it may be anywhere. A file a matrix names must be inside the matrix's
	// directory (see Provisioner).
	Named bool
}

// paramsResolver is implemented by check parameter types that need more
// than the YAML around them: files relative to the matrix file, checked for
// existence. resolve runs after a successful strict decode, with n the
// parameters' node (the check's name when it has none); it reports problems
// through env.errorf and lists the host files the guest needs.
type paramsResolver interface {
	resolve(env *paramsEnv, n *yaml.Node)
}

// paramsEnv is what a paramsResolver may use.
type paramsEnv struct {
	dir     string // the matrix file's directory
	path    string // "checks[2].verifier", for messages
	p       *matrixParser
	files   []GuestFile
	modules []string // kernel modules the check loads on demand
	// byArch, skipAs and otherArch become the check's ByArch, SkipAs and
	// OtherArch (the test check).
	byArch            map[kernels.Arch]ArchCheck
	skipAs, otherArch string
}

// derivedParams is implemented by host parameter types that send the guest
// keys matrix.yaml does not write, worked out by resolve (the test check's
// result name and binds).
type derivedParams interface {
	derivedKeys() []string
}

func (e *paramsEnv) errorf(n *yaml.Node, format string, args ...any) {
	e.p.errorf(n, "%s: "+format, append([]any{e.path}, args...)...)
}

// check decodes one item of the checks list: NAME or NAME: {params}. The
// parameters sent to the guest are the keys matrix.yaml gives, in the
// guest's form; the guest fills in the rest from the same defaults (see
// protocol.Check.Decode). They are validated here with the guest's own
// rules, defaults included, so that bad parameters stop the run before any
// VM boots.
func (p *matrixParser) check(n *yaml.Node, path string, timeout time.Duration) (Check, *yaml.Node, bool) {
	var name, params *yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode && !yamlstrict.IsNull(n):
		name = n
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Kind == yaml.ScalarNode:
		name, params = n.Content[0], yamlstrict.Resolve(n.Content[1])
	case n.Kind == yaml.MappingNode && len(n.Content) > 2:
		p.errorf(n, "%s: expected one check per list item, got keys %s; indent parameters under the check name",
			path, strings.Join(yamlstrict.Keys(n), ", "))
		return Check{}, nil, false
	default:
		p.errorf(n, "%s: expected a check name or NAME: {parameters}, got %s", path, yamlstrict.Describe(n))
		return Check{}, nil, false
	}

	hc, ok := hostChecks[name.Value]
	if !ok {
		known := knownChecks()
		p.errorf(name, "%s: unknown check %q%s; known checks: %s", path, name.Value, spelling.DidYouMean(name.Value, known), strings.Join(known, ", "))
		return Check{}, nil, false
	}
	c := Check{Name: name.Value, Timeout: timeout}
	path = yamlstrict.JoinPath(path, name.Value)
	before := p.problems()

	v := reflect.New(hc.params).Elem()
	at := name // where problems of the parameters as a whole are reported
	var given []string
	if !yamlstrict.IsNull(params) {
		// Decode the parameters together with the reserved timeout key, so
		// that an unknown key lists both as allowed.
		wrapped := reflect.StructOf([]reflect.StructField{
			{Name: "Params", Type: hc.params, Tag: `yaml:",inline"`},
			{Name: "Timeout", Type: reflect.TypeFor[yamlDuration](), Tag: `yaml:"timeout"`},
		})
		w := reflect.New(wrapped).Elem()
		problems := yamlstrict.Decode(params, w, path)
		for _, prob := range problems {
			p.errorf(prob.Node, "%s", prob.Msg)
		}
		if len(problems) > 0 || params.Kind != yaml.MappingNode {
			return c, name, false
		}
		if d := time.Duration(w.Field(1).Interface().(yamlDuration)); d != 0 {
			c.Timeout = d
		}
		v, at = w.Field(0), params
		given = slices.DeleteFunc(yamlstrict.Keys(params), func(k string) bool { return k == "timeout" })
	}

	if r, ok := v.Addr().Interface().(paramsResolver); ok {
		env := &paramsEnv{dir: filepath.Dir(p.file), path: path, p: p}
		r.resolve(env, at)
		c.Files, c.Modules = env.files, env.modules
		c.ByArch, c.SkipAs, c.OtherArch = env.byArch, env.skipAs, env.otherArch
	}
	if d, ok := v.Addr().Interface().(derivedParams); ok && len(given) > 0 {
		given = append(given, d.derivedKeys()...)
	}
	if len(given) > 0 {
		js, err := guestParams(v.Interface(), given, hc.def.Params)
		if err != nil {
			p.errorf(at, "%s: encode parameters: %v", path, err)
			return c, name, false
		}
		c.Params = js
	}
	if p.problems() > before {
		return c, name, true // the guest's rules would repeat what is wrong
	}
	if err := hc.def.Validate(c.Params); err != nil {
		var pe *protocol.ParamsError
		if !errors.As(err, &pe) {
			p.errorf(at, "%s: %v", path, err)
			return c, name, true
		}
		for _, prob := range pe.Problems {
			p.errorf(paramNode(at, prob), "%s: %s", path, prob.Msg)
		}
	}
	return c, name, true
}

// guestParams encodes v, a check's parameters as decoded from matrix.yaml,
// as the JSON object the guest reads, keeping only the keys given in
// matrix.yaml, in the order of the guest's type.
func guestParams(v any, given []string, guest reflect.Type) (json.RawMessage, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(js, &all); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, key := range jsonKeys(guest) {
		val, ok := all[key]
		if !ok || !slices.Contains(given, key) {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	if b.Len() == 2 {
		return nil, nil
	}
	return b.Bytes(), nil
}

// jsonKeys lists the JSON keys of struct type t in declaration order.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}

// paramNode returns the node to report prob at: the value at its key path
// (the key itself when prob.AtKey, or when the value is empty), or the
// deepest node on the path that matrix.yaml has.
func paramNode(at *yaml.Node, prob protocol.ParamProblem) *yaml.Node {
	n := at
	for i, k := range prob.Key {
		key, val := yamlstrict.Entry(n, k)
		switch {
		case key == nil:
			return n
		case i == len(prob.Key)-1 && prob.AtKey, yamlstrict.IsNull(val):
			return key
		}
		n = val
	}
	return n
}

// The checks' files reach the guest two ways. The files a check reads (BPF
// objects) and the programs of vmrunner exec and the test check travel
// with the plan, over the channel (planFile, shareFiles): they change with
// every edit or build, and a VM restored from a snapshot gets them as well
// as a booted one. The programs the workload and beyla checks run (the
// workload runner, a Beyla binary: tens of MB, changing rarely) are packed
// into the initramfs, and so into the snapshot's key: the channel carries
// 20–25 MB/s into a TCG guest here, so that sending them every run would
// cost about what the snapshot saves, while a new key costs one boot.

// ExtraFiles lists the programs the checks of m run in the guest: they go
// into the initramfs.
func ExtraFiles(m *Matrix) []initramfs.File {
	var files []initramfs.File
	for _, c := range m.Checks {
		for _, f := range c.Files {
			if f.Exec {
				files = append(files, f.InitramfsFile())
			}
		}
	}
	return files
}

// DataFiles lists the files the checks of m read in the guest: they travel
// with the plan.
func DataFiles(m *Matrix) []GuestFile {
	var files []GuestFile
	for _, c := range m.Checks {
		for _, f := range c.Files {
			if !f.Exec {
				files = append(files, f)
			}
		}
	}
	return files
}

// OnDemandModules lists the kernel modules the checks of m load themselves.
func OnDemandModules(m *Matrix) []string {
	var mods []string
	for _, c := range m.Checks {
		for _, name := range c.Modules {
			if !slices.Contains(mods, name) {
				mods = append(mods, name)
			}
		}
	}
	return mods
}

func (f GuestFile) InitramfsFile() initramfs.File {
	mode := os.FileMode(0o644)
	if f.Exec {
		mode = 0o755
	}
	return initramfs.File{Path: f.Guest, Source: f.Host, Mode: mode}
}
