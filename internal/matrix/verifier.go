package matrix

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/bpfobject"
	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// GuestObjectDir is where the verifier check's objects are in the guest.
const GuestObjectDir = "/vmrunner/objects"

func init() { registerCheck[verifierParams](protocol.VerifierCheck.Def()) }

// verifierParams is the "verifier" check as written in matrix.yaml:
//
//	verifier:
//	  objects:                         # paths or globs, relative to the matrix file
//	    - testdata/bpf/*.o
//	    - path: build/tracer_{arch}.o  # {arch}: x86_64 or arm64, one object per arch
//	      name: tracer                 # results as verifier/tracer/<program>
//	      constants: {filter_pid: 42}  # volatile const globals, typed by the object's BTF
//	      maps: {flows: {max_entries: 1024}}
//	      attach_to: {trace_main: {object: build/app.o, program: main}}
//	      modules: [nf_conntrack]
//	  programs: [uses_bpf_loop]        # optional: only these
//	  expect: {uses_bpf_loop: {fail: ["<5.17"]}}
//	  attach: true                     # attach each loaded program to its hook
//	  budget: {insns_percent_of_limit: 50}  # fail a program over half the complexity limit
//
// It is sent to the guest as protocol.VerifierParams, with the objects'
// guest paths and, for per-arch builds, their arch.
type verifierParams struct {
	Objects  []verifierObject          `yaml:"objects"`
	Programs []string                  `yaml:"programs"`
	Expect   map[string]verifierExpect `yaml:"expect"`
	Attach   bool                      `yaml:"attach"`
	Budget   *verifierBudget           `yaml:"budget"`

	guest      []protocol.VerifierObject // resolved
	names      map[string][]string       // program names by result object name
	unreadable bool                      // an object did not parse: names are not checked
}

// verifierBudget is protocol.VerifierBudget as written.
type verifierBudget struct {
	InsnsPercentOfLimit budgetPercent `yaml:"insns_percent_of_limit"`
}

// budgetPercent is a share of the verifier's limit, in (0, 100].
type budgetPercent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *budgetPercent) UnmarshalYAML(n *yaml.Node) error {
	var f float64
	if n.Kind != yaml.ScalarNode || n.Decode(&f) != nil || f <= 0 || f > 100 {
		return fmt.Errorf("expected a percentage of the verifier's instruction limit, more than 0 and at most 100, got %s", yamlstrict.Describe(n))
	}
	*b = budgetPercent(f)
	return nil
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

// verifierObject is one item of objects: a path or glob, or a mapping with
// one and what the object's loader sets before loading it.
type verifierObject struct {
	objectSettings
	node *yaml.Node // the item
}

// objectSettings are the keys of an objects item written as a mapping; the
// keys are protocol.VerifierObject's.
type objectSettings struct {
	Path      string                    `yaml:"path"`
	Name      string                    `yaml:"name"`
	Constants map[string]constantValue  `yaml:"constants"`
	Maps      map[string]verifierMap    `yaml:"maps"`
	AttachTo  map[string]verifierTarget `yaml:"attach_to"`
	Modules   []moduleName              `yaml:"modules"`
	// UprobeBinary is the executable the object's uprobes attach to
	// ({arch} allowed), relative to the matrix file.
	UprobeBinary string `yaml:"uprobe_binary"`
}

type verifierMap struct {
	MaxEntries uint32 `yaml:"max_entries"`
}

type verifierTarget struct {
	Object  string `yaml:"object"`
	Program string `yaml:"program"`
}

// UnmarshalYAML implements yaml.Unmarshaler: a path, or a mapping.
func (o *verifierObject) UnmarshalYAML(n *yaml.Node) error {
	o.node = n
	switch n.Kind {
	case yaml.ScalarNode:
		o.Path = n.Value
		return nil
	case yaml.MappingNode:
		var errs []error
		for _, prob := range yamlstrict.Decode(n, reflect.ValueOf(&o.objectSettings).Elem(), "") {
			errs = append(errs, yamlstrict.ErrorAt(prob.Node, "%s", prob.Msg))
		}
		if o.Path == "" && len(errs) == 0 {
			errs = append(errs, yamlstrict.ErrorAt(n, "missing path: expected {path: FILE, ...}"))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("expected an object path or {path: FILE, constants: ..., maps: ...}, got %s", yamlstrict.Describe(n))
}

// constantValue is a constant's value as written: a scalar, typed later
// against the object's BTF.
type constantValue struct {
	text string
	node *yaml.Node
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *constantValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || yamlstrict.IsNull(n) {
		return fmt.Errorf("expected a number, true or false, or an enum value's name, got %s", yamlstrict.Describe(n))
	}
	c.text, c.node = n.Value, n
	return nil
}

// moduleName is a kernel module's name, as modprobe takes it.
type moduleName string

var moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *moduleName) UnmarshalText(b []byte) error {
	if !moduleNameRE.Match(b) {
		return errors.New("expected a module name like nf_conntrack")
	}
	*m = moduleName(strings.ReplaceAll(string(b), "-", "_"))
	return nil
}

// MarshalJSON sends what the guest reads, protocol.VerifierParams.
func (v verifierParams) MarshalJSON() ([]byte, error) {
	p := protocol.VerifierParams{Objects: v.guest, Programs: v.Programs, Attach: v.Attach}
	if v.Budget != nil {
		p.Budget = &protocol.VerifierBudget{InsnsPercentOfLimit: float64(v.Budget.InsnsPercentOfLimit)}
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

// objectFile is one object file an objects item resolved to.
type objectFile struct {
	host        string
	arch        kernels.Arch // "" for every arch
	archPattern bool         // found through {arch}
	spec        *ebpf.CollectionSpec
}

// withoutArch is an object name without the arch that {arch} put in it:
// tracer_x86_64 and tracer_arm64 both report as tracer.
func withoutArch(name string, arch kernels.Arch) string {
	stripped := strings.Replace(name, string(arch), "", 1)
	for strings.Contains(stripped, "__") || strings.Contains(stripped, "--") {
		stripped = strings.ReplaceAll(strings.ReplaceAll(stripped, "__", "_"), "--", "-")
	}
	return cmp.Or(strings.Trim(stripped, "_-."), name)
}

// resolve expands the object paths relative to the matrix file ({arch} and
// bpf2go's per-arch names give objects for one arch), checks each object's
// settings against the object itself, and lists the files for the guest.
// Each must match at least one file; two different files may not share a
// base name, since they share a guest directory, nor two objects of one
// arch a result name.
func (v *verifierParams) resolve(env *paramsEnv, n *yaml.Node) {
	objects := yamlstrict.Value(n, "objects")
	if yamlstrict.IsNull(objects) || len(v.Objects) == 0 {
		env.errorf(n, "missing objects: expected a list of BPF object paths or globs, relative to the matrix file")
		return
	}
	r := objectResolver{env: env, guestOf: map[string]string{}, hostOf: map[string]string{}, names: map[string]string{}}
	v.names = map[string][]string{}
	for i := range v.Objects {
		o := &v.Objects[i]
		where := fmt.Sprintf("objects[%d]", i)
		for _, f := range r.files(o, where) {
			derived := bpfobject.ParseName(filepath.Base(f.host)).Object
			name := o.Name
			if name == "" && f.archPattern {
				name = withoutArch(derived, f.arch)
			}
			if !r.claim(o.node, where, cmp.Or(name, derived), f) {
				continue
			}
			g := protocol.VerifierObject{Path: r.guestPath(f.host), Name: name, Arch: string(f.arch)}
			name = cmp.Or(name, derived)
			if f.spec == nil {
				v.unreadable = true // the guest reports it
			} else {
				g.Constants, g.Maps, g.AttachTo = r.settings(o, where, f)
				v.names[name] = append(v.names[name], slices.Collect(maps.Keys(f.spec.Programs))...)
			}
			for _, m := range o.Modules {
				g.Modules = append(g.Modules, string(m))
				if !slices.Contains(env.modules, string(m)) {
					env.modules = append(env.modules, string(m))
				}
			}
			if o.UprobeBinary != "" {
				g.UprobeBinary = r.uprobeBinary(o, where)
			}
			v.guest = append(v.guest, g)
		}
	}
	if v.Attach {
		// Legacy tc attach needs the clsact qdisc and the bpf classifier,
		// modules in distribution kernels that the guest cannot modprobe.
		for _, m := range protocol.TCModules {
			if !slices.Contains(env.modules, m) {
				env.modules = append(env.modules, m)
			}
		}
	}
	v.checkNames(env, n)
}

// objectResolver is the state of one resolve.
type objectResolver struct {
	env     *paramsEnv
	guestOf map[string]string // guest path by host path
	hostOf  map[string]string // host path by base name
	names   map[string]string // host path by result name and arch
}

// files returns the object files an item names.
func (r *objectResolver) files(o *verifierObject, where string) []objectFile {
	at := o.node
	if o.node.Kind == yaml.MappingNode {
		at = yamlstrict.Value(o.node, "path")
	}
	full := o.Path
	if !filepath.IsAbs(full) {
		full = filepath.Join(r.env.dir, full)
	}
	arches := []kernels.Arch{""}
	if strings.Contains(full, "{arch}") {
		arches = kernels.Arches
	}
	var out []objectFile
	for _, arch := range arches {
		pattern := strings.ReplaceAll(full, "{arch}", string(arch))
		matches, err := filepath.Glob(pattern)
		if err != nil {
			r.env.errorf(at, "%s: bad glob %q: %v", where, o.Path, err)
			return nil
		}
		// A glob may match directories: they are not objects. Anything
		// else it matches must be a regular file of a bounded size (a FIFO
		// would block the read, /dev/zero never end it): refused, named.
		matches = slices.DeleteFunc(matches, func(m string) bool {
			fi, err := os.Stat(m)
			return err == nil && fi.IsDir()
		})
		refused := false
		matches = slices.DeleteFunc(matches, func(m string) bool {
			_, err := inputfile.Check(m, MaxObjectFile)
			if err != nil {
				r.env.errorf(at, "%s: %v", where, err)
				refused = true
			}
			return err != nil
		})
		if len(matches) == 0 && refused {
			continue
		}
		if len(matches) == 0 {
			what := fmt.Sprintf("%q matches no file", o.Path)
			if arch != "" {
				what = fmt.Sprintf("%q matches no file for %s (%s)", o.Path, arch, pattern)
			}
			r.env.errorf(at, "%s: %s (relative to %s)", where, what, orDot(r.env.dir))
			continue
		}
		for _, m := range matches {
			f := objectFile{host: m, arch: arch, archPattern: arch != ""}
			name := bpfobject.ParseName(filepath.Base(m))
			switch {
			case name.Target != "" && name.Arch == "":
				r.env.errorf(at, "%s: %s is bpf2go's build for %s, an arch vmrunner does not run; narrow the glob", where, filepath.Base(m), name.Target)
				continue
			case name.Arch != "" && arch != "" && string(arch) != name.Arch:
				r.env.errorf(at, "%s: %s is bpf2go's build for %s, not %s", where, filepath.Base(m), name.Arch, arch)
				continue
			case name.Arch != "":
				f.arch = kernels.Arch(name.Arch)
			}
			f.spec, _ = LoadObjectSpec(m) // nil: the guest says why, in the object's record
			out = append(out, f)
		}
	}
	return out
}

// uprobeBinary checks and packs an item's uprobe_binary (once per arch
// with {arch}) and returns its guest path, with {arch} kept for the guest
// to fill in. An executable without a symbol table is refused: uprobes are
// placed by symbol.
func (r *objectResolver) uprobeBinary(o *verifierObject, where string) string {
	at := yamlstrict.Value(o.node, "uprobe_binary")
	full := o.UprobeBinary
	if !filepath.IsAbs(full) {
		full = filepath.Join(r.env.dir, full)
	}
	base := filepath.Base(full)
	guest := path.Join(protocol.GuestUprobeDir, base)
	arches := []kernels.Arch{""}
	if strings.Contains(full, "{arch}") {
		arches = kernels.Arches
		guest = path.Join(protocol.GuestUprobeDir, "{arch}", base)
	}
	for _, arch := range arches {
		host := strings.ReplaceAll(full, "{arch}", string(arch))
		if err := checkSymbols(host); err != nil {
			r.env.errorf(at, "%s.uprobe_binary: %v", where, err)
			continue
		}
		g := strings.ReplaceAll(guest, "{arch}", string(arch))
		if _, done := r.guestOf[host]; !done {
			r.guestOf[host] = g
			r.env.files = append(r.env.files, GuestFile{Host: host, Guest: g, Exec: true})
		}
	}
	return guest
}

// checkSymbols says whether file is an ELF executable with symbols.
func checkSymbols(file string) error {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("%s: no such file", file)
	}
	f, closeFile, err := openELF(file)
	if err != nil {
		return err
	}
	defer func() { _ = closeFile() }()
	syms, _ := f.Symbols()
	dyn, _ := f.DynamicSymbols()
	if len(syms)+len(dyn) == 0 {
		return fmt.Errorf("%s has no symbol table (stripped?): uprobes are placed by symbol", file)
	}
	return nil
}

// claim checks that f can be packed and reported under name, and packs it.
func (r *objectResolver) claim(at *yaml.Node, where, name string, f objectFile) bool {
	base := filepath.Base(f.host)
	if first, ok := r.hostOf[base]; ok && first != f.host {
		r.env.errorf(at, "%s: %s and %s have the same name; rename one", where, first, f.host)
		return false
	}
	for _, arch := range objectArches(f.arch) {
		key := name + "@" + string(arch)
		if first, ok := r.names[key]; ok {
			r.env.errorf(at, "%s: %s and %s both report as verifier/%s on %s; give one a name: (objects: [{path: FILE, name: NAME}])", where, first, f.host, name, arch)
			return false
		}
		r.names[key] = f.host
	}
	r.guestPath(f.host)
	return true
}

func objectArches(a kernels.Arch) []kernels.Arch {
	if a == "" {
		return kernels.Arches
	}
	return []kernels.Arch{a}
}

// guestPath packs a host file once and returns its guest path.
func (r *objectResolver) guestPath(host string) string {
	if g, ok := r.guestOf[host]; ok {
		return g
	}
	base := filepath.Base(host)
	g := path.Join(GuestObjectDir, base)
	r.guestOf[host], r.hostOf[base] = g, host
	r.env.files = append(r.env.files, GuestFile{Host: host, Guest: g})
	return g
}

// settings checks an item's constants, map sizes and attach targets
// against object f, as the guest will apply them, and returns them in the
// guest's form.
func (r *objectResolver) settings(o *verifierObject, where string, f objectFile) (map[string]string, map[string]protocol.VerifierMap, map[string]protocol.VerifierTarget) {
	base := filepath.Base(f.host)
	var consts map[string]string
	for _, cn := range slices.Sorted(maps.Keys(o.Constants)) {
		c := o.Constants[cn]
		if _, err := bpfobject.ConstantBytes(f.spec, cn, c.text); err != nil {
			r.env.errorf(c.node, "%s.constants.%s: %s: %v", where, cn, base, err)
			continue
		}
		if consts == nil {
			consts = map[string]string{}
		}
		consts[cn] = c.text
	}
	var sizes map[string]protocol.VerifierMap
	for _, mn := range slices.Sorted(maps.Keys(o.Maps)) {
		if err := bpfobject.CheckMaxEntries(f.spec, mn, o.Maps[mn].MaxEntries); err != nil {
			at, v := yamlstrict.Entry(yamlstrict.Value(o.node, "maps"), mn)
			if _, ok := f.spec.Maps[mn]; ok {
				at = yamlstrict.Pos(v, "max_entries")
			}
			r.env.errorf(at, "%s.maps.%s: %s: %v", where, mn, base, err)
			continue
		}
		if sizes == nil {
			sizes = map[string]protocol.VerifierMap{}
		}
		sizes[mn] = protocol.VerifierMap{MaxEntries: o.Maps[mn].MaxEntries}
	}
	var targets map[string]protocol.VerifierTarget
	attachTo := yamlstrict.Value(o.node, "attach_to")
	for _, pn := range slices.Sorted(maps.Keys(o.AttachTo)) {
		t := o.AttachTo[pn]
		key, at := yamlstrict.Entry(attachTo, pn)
		if _, ok := f.spec.Programs[pn]; !ok {
			r.env.errorf(key, "%s.attach_to: no program %q in %s; it has: %s", where, pn, base, strings.Join(slices.Sorted(maps.Keys(f.spec.Programs)), ", "))
			continue
		}
		host := t.Object
		if host == "" {
			r.env.errorf(at, "%s.attach_to.%s: missing object: expected {object: FILE, program: NAME}", where, pn)
			continue
		}
		if !filepath.IsAbs(host) {
			host = filepath.Join(r.env.dir, host)
		}
		spec, err := LoadObjectSpec(host)
		if err != nil {
			r.env.errorf(at, "%s.attach_to.%s: object %s: %v", where, pn, t.Object, err)
			continue
		}
		if _, ok := spec.Programs[t.Program]; !ok {
			r.env.errorf(at, "%s.attach_to.%s: no program %q in %s; it has: %s", where, pn, t.Program, t.Object, strings.Join(slices.Sorted(maps.Keys(spec.Programs)), ", "))
			continue
		}
		if targets == nil {
			targets = map[string]protocol.VerifierTarget{}
		}
		targets[pn] = protocol.VerifierTarget{Object: r.guestPath(host), Program: t.Program}
	}
	return consts, sizes, targets
}

// checkNames reports names in programs and expect that no object has:
// PROGRAM, OBJECT/PROGRAM, or (in expect) OBJECT for the object's own
// result. It needs every object to parse; one that does not is reported by
// the guest, per object, and the names are not checked.
func (v *verifierParams) checkNames(env *paramsEnv, n *yaml.Node) {
	if v.unreadable {
		return
	}
	have, progs := map[string]bool{}, map[string]bool{}
	for obj, names := range v.names {
		have[obj] = true
		for _, name := range names {
			have[name], have[obj+"/"+name], progs[name] = true, true, true
		}
	}
	if len(have) == 0 {
		return
	}
	known := func() string {
		return strings.Join(slices.Sorted(maps.Keys(progs)), ", ")
	}
	if list := yamlstrict.Value(n, "programs"); list != nil && list.Kind == yaml.SequenceNode {
		for i, item := range list.Content {
			if !progs[item.Value] {
				env.errorf(item, "programs[%d]: no program %q in the objects; they have: %s", i, item.Value, known())
			}
		}
	}
	if expect := yamlstrict.Value(n, "expect"); expect != nil && expect.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(expect.Content); i += 2 {
			if key := expect.Content[i]; !have[key.Value] {
				env.errorf(key, "expect: no program %q in the objects (PROGRAM, OBJECT/PROGRAM or OBJECT); they have: %s", key.Value, known())
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
