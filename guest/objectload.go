package guest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/guest/kernelbtf"
)

// objectLoader loads one BPF object as a bpf2go or libbpf loader does:
// every map (maps pinned by name in a directory of their own on bpffs),
// every variable, every program with the maps it uses, and then the maps
// that hold programs or maps. Unlike those loaders it goes one step at a
// time, so that each program gets its own verdict and a later step that
// fails is reported as that step, never as the program's.
//
// Each step goes through ebpf.NewCollectionWithOptions with a spec cut
// down to what the step creates and the maps made before it as
// replacements: cilium/ebpf still does the CO-RE relocations, kconfig and
// ksym resolution, data section assembly and freezing, and the variables
// stay with the maps they live in.
type objectLoader struct {
	spec    *ebpf.CollectionSpec
	cache   *btf.Cache
	bpffs   string // where pin directories are made
	pinDir  string // made for the first map pinned by name
	maps    map[string]*ebpf.Map
	mapErrs map[string]error
	progs   map[string]*ebpf.Program
	// kernelTypes are the external BTF's types when the kernel has none
	// or the matrix gives them (kernelbtf), else nil: the kernel's own.
	kernelTypes    *btf.Spec
	kernelTypesErr error
}

func newObjectLoader(spec *ebpf.CollectionSpec, bpffs string, cache *btf.Cache) *objectLoader {
	l := &objectLoader{
		spec:    spec,
		cache:   cache,
		bpffs:   bpffs,
		maps:    map[string]*ebpf.Map{},
		mapErrs: map[string]error{},
		progs:   map[string]*ebpf.Program{},
	}
	l.kernelTypes, _, l.kernelTypesErr = kernelbtf.KernelTypes()
	return l
}

// stepError is a loader step other than the verifier's that failed.
type stepError struct {
	step string // "create map flows", "populate map jump_table", ...
	err  error
	// mapName is the map a "create map" step failed on; kernelTypes marks
	// the step that reads the kernel's types.
	mapName     string
	kernelTypes bool
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// deferredMap reports whether a map's contents name other programs or
// maps: they are put in once those exist.
func deferredMap(ms *ebpf.MapSpec) bool {
	switch ms.Type {
	case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return true
	}
	return false
}

// mapCopy is a copy of the spec's map name without the contents that wait
// for other objects.
func (l *objectLoader) mapCopy(name string) *ebpf.MapSpec {
	ms := l.spec.Maps[name].Copy()
	if deferredMap(ms) {
		ms.Contents = nil
	}
	return ms
}

// createMap creates map name of the object once, with the variables that
// live in it; a map that failed fails again with the same error.
func (l *objectLoader) createMap(name string) (*ebpf.Map, error) {
	if m := l.maps[name]; m != nil {
		return m, nil
	}
	if err := l.mapErrs[name]; err != nil {
		return nil, err
	}
	m, err := l.newMap(name)
	if err != nil {
		err = &stepError{step: "create map " + name, err: err, mapName: name}
		l.mapErrs[name] = err
		return nil, err
	}
	l.maps[name] = m
	return m, nil
}

func (l *objectLoader) newMap(name string) (*ebpf.Map, error) {
	ms, ok := l.spec.Maps[name]
	if !ok {
		return nil, errors.New("no such map in the object")
	}
	if ms.Type == ebpf.StructOpsMap {
		return nil, errors.New("struct_ops maps are made with their programs")
	}
	if ms.Pinning == ebpf.PinByName && l.pinDir == "" {
		dir, err := os.MkdirTemp(l.bpffs, "vmrunner-")
		if err != nil {
			return nil, fmt.Errorf("make pin directory: %w", err)
		}
		l.pinDir = dir
	}
	sub := &ebpf.CollectionSpec{
		Maps:      map[string]*ebpf.MapSpec{name: l.mapCopy(name)},
		Variables: map[string]*ebpf.VariableSpec{},
		Types:     l.spec.Types,
		ByteOrder: l.spec.ByteOrder,
	}
	for vn, v := range l.spec.Variables {
		if v.SectionName == name {
			sub.Variables[vn] = v
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(sub, ebpf.CollectionOptions{
		Maps:  ebpf.MapOptions{PinPath: l.pinDir},
		Cache: l.cache,
	})
	if err != nil {
		return nil, unwrapCollection(err, "map "+name)
	}
	defer coll.Close()
	return coll.DetachMap(name), nil
}

// mapRefs lists the maps a program's instructions load, sorted.
func mapRefs(ps *ebpf.ProgramSpec) []string {
	var refs []string
	for _, ins := range ps.Instructions {
		if ins.IsLoadFromMap() && ins.Reference() != "" && !slices.Contains(refs, ins.Reference()) {
			refs = append(refs, ins.Reference())
		}
	}
	slices.Sort(refs)
	return refs
}

// loadOptions are how one program is loaded.
type loadOptions struct {
	level   ebpf.LogLevel
	logSize uint32
	// target is the program a freplace or fentry/fexit-on-BPF program
	// attaches to.
	target *ebpf.Program
}

// loadProgram creates the maps program name uses, then loads it with them.
// The program stays loaded, for the maps that hold programs and for the
// attach step, until close. A rejection by the verifier is an
// *ebpf.VerifierError; a map that could not be created, a *stepError.
func (l *objectLoader) loadProgram(name string, o loadOptions) (*ebpf.Program, error) {
	ps, ok := l.spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("no program %q in the object", name)
	}
	if l.kernelTypesErr != nil {
		return nil, &stepError{step: "load kernel types", err: l.kernelTypesErr, kernelTypes: true}
	}
	ps = ps.Copy()
	if o.target != nil {
		ps.AttachTarget = o.target
	}
	sub := &ebpf.CollectionSpec{
		Programs:  map[string]*ebpf.ProgramSpec{name: ps},
		Maps:      map[string]*ebpf.MapSpec{},
		Types:     l.spec.Types,
		ByteOrder: l.spec.ByteOrder,
	}
	replace := map[string]*ebpf.Map{}
	for _, ref := range mapRefs(ps) {
		if _, ok := l.spec.Maps[ref]; !ok {
			continue // not a map: cilium/ebpf says what it is
		}
		m, err := l.createMap(ref)
		if err != nil {
			return nil, err
		}
		sub.Maps[ref], replace[ref] = l.mapCopy(ref), m
	}
	coll, err := ebpf.NewCollectionWithOptions(sub, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{LogLevel: o.level, LogSizeStart: o.logSize, KernelTypes: l.kernelTypes},
		MapReplacements: replace,
		Cache:           l.cache,
	})
	if err != nil {
		return nil, unwrapCollection(err, "program "+name)
	}
	defer coll.Close()
	if old := l.progs[name]; old != nil {
		old.Close()
	}
	p := coll.DetachProgram(name)
	l.progs[name] = p
	return p, nil
}

// finish does what a loader does after the programs: it creates the maps
// no loaded program used, puts programs and maps into the maps that hold
// them, and creates struct_ops maps with their programs (which the kernel
// verifies a second time). Each failed step is returned; skip lists the
// programs not loaded on purpose (not asked for), whose absence from a
// program array is not a failure.
func (l *objectLoader) finish(skip []string) []*stepError {
	var errs []*stepError
	names := make([]string, 0, len(l.spec.Maps))
	for name := range l.spec.Maps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if l.spec.Maps[name].Type == ebpf.StructOpsMap {
			continue
		}
		if _, err := l.createMap(name); err != nil {
			var se *stepError
			if errors.As(err, &se) && !slices.ContainsFunc(errs, func(e *stepError) bool { return e == se }) {
				errs = append(errs, se)
			}
		}
	}
	for _, name := range names {
		ms := l.spec.Maps[name]
		switch {
		case ms.Type == ebpf.StructOpsMap:
			if err := l.createStructOps(name); err != nil {
				errs = append(errs, &stepError{step: "create struct_ops map " + name, err: err, mapName: name})
			}
		case deferredMap(ms) && l.maps[name] != nil:
			if err := l.populate(name, ms, skip); err != nil {
				errs = append(errs, &stepError{step: "populate map " + name, err: err})
			}
		}
	}
	return errs
}

// populate puts the programs or maps that ms's contents name into map name.
func (l *objectLoader) populate(name string, ms *ebpf.MapSpec, skip []string) error {
	m := l.maps[name]
	for _, kv := range ms.Contents {
		ref, ok := kv.Value.(string)
		if !ok {
			if err := m.Put(kv.Key, kv.Value); err != nil {
				return fmt.Errorf("key %v: %w", kv.Key, err)
			}
			continue
		}
		var value any
		if ms.Type == ebpf.ProgramArray {
			p := l.progs[ref]
			if p == nil {
				if slices.Contains(skip, ref) {
					continue
				}
				return fmt.Errorf("key %v: program %s was not loaded", kv.Key, ref)
			}
			value = p
		} else {
			inner, err := l.createMap(ref)
			if err != nil {
				return fmt.Errorf("key %v: %w", kv.Key, err)
			}
			value = inner
		}
		if err := m.Put(kv.Key, value); err != nil {
			return fmt.Errorf("key %v: %s: %w", kv.Key, ref, err)
		}
	}
	return nil
}

// structOpsPrograms lists the programs of struct_ops map name: those that
// attach to a member of its struct.
func (l *objectLoader) structOpsPrograms(name string) []string {
	st, ok := btf.As[*btf.Struct](l.spec.Maps[name].Value)
	if !ok {
		return nil
	}
	var progs []string
	for pn, ps := range l.spec.Programs {
		if ps.Type == ebpf.StructOps && strings.HasPrefix(ps.AttachTo, st.Name+":") {
			progs = append(progs, pn)
		}
	}
	slices.Sort(progs)
	return progs
}

// createStructOps creates struct_ops map name with its programs, each of
// which must have loaded on its own first.
func (l *objectLoader) createStructOps(name string) error {
	sub := &ebpf.CollectionSpec{
		Maps:      map[string]*ebpf.MapSpec{name: l.spec.Maps[name].Copy()},
		Programs:  map[string]*ebpf.ProgramSpec{},
		Types:     l.spec.Types,
		ByteOrder: l.spec.ByteOrder,
	}
	for _, pn := range l.structOpsPrograms(name) {
		if l.progs[pn] == nil {
			return fmt.Errorf("its program %s did not load", pn)
		}
		sub.Programs[pn] = l.spec.Programs[pn].Copy()
	}
	coll, err := ebpf.NewCollectionWithOptions(sub, ebpf.CollectionOptions{Cache: l.cache})
	if err != nil {
		return unwrapCollection(err, "map "+name)
	}
	defer coll.Close()
	l.maps[name] = coll.DetachMap(name)
	return nil
}

// close releases everything the object loaded and removes its pins.
func (l *objectLoader) close() error {
	for _, p := range l.progs {
		p.Close()
	}
	for _, m := range l.maps {
		m.Close()
	}
	if l.pinDir != "" {
		if err := os.RemoveAll(l.pinDir); err != nil {
			return fmt.Errorf("remove pin directory: %w", err)
		}
	}
	return nil
}

// pinned lists the maps pinned by name, sorted.
func (l *objectLoader) pinned() []string {
	var names []string
	for name, ms := range l.spec.Maps {
		if ms.Pinning == ebpf.PinByName && l.maps[name] != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// unwrapCollection drops the "map X: " or "program X: " that
// NewCollectionWithOptions puts before its errors, since the caller names
// the step itself.
func unwrapCollection(err error, prefix string) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return ve
	}
	if msg, ok := strings.CutPrefix(err.Error(), prefix+": "); ok {
		return &prefixedError{msg, err}
	}
	return err
}

// prefixedError is err with a shorter message.
type prefixedError struct {
	msg string
	err error
}

func (e *prefixedError) Error() string { return e.msg }
func (e *prefixedError) Unwrap() error { return errors.Unwrap(e.err) }
