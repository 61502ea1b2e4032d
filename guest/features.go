package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/guest/kernelbtf"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/kernels/kconfig"
	"github.com/vmrunner/vmrunner/protocol"
)

// prober answers feature probes; features.go uses cilium/ebpf's features
// package, tests a table.
type prober interface {
	programType(ebpf.ProgramType) error
	mapType(ebpf.MapType) error
	helper(ebpf.ProgramType, asm.BuiltinFunc) error
}

type kernelProber struct{}

func (kernelProber) programType(t ebpf.ProgramType) error {
	if spec, ok := attachingProbes[t]; ok {
		return probeAttaching(spec())
	}
	return features.HaveProgramType(t)
}

func (kernelProber) mapType(t ebpf.MapType) error { return features.HaveMapType(t) }
func (kernelProber) helper(t ebpf.ProgramType, h asm.BuiltinFunc) error {
	if spec, ok := attachingProbes[t]; ok {
		return probeAttachingHelper(spec, h)
	}
	return features.HaveProgramHelper(t, h)
}

// probeAttachingHelper asks whether a program of an attaching type (fentry,
// LSM) may call helper h. cilium/ebpf has no helper probe for these types:
// its probe program has no attach target. This one is attachingProbes'
// program, with its target, calling h; a kernel without the type has
// none of its helpers.
func probeAttachingHelper(spec func() *ebpf.ProgramSpec, h asm.BuiltinFunc) error {
	if err := probeAttaching(spec()); err != nil {
		return err
	}
	ps := spec()
	ps.License = "GPL"
	ps.Instructions = asm.Instructions{h.Call(), asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()}
	coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"probe": ps}},
		ebpf.CollectionOptions{Cache: kernelbtf.Cache()})
	if err == nil {
		coll.Close()
	}
	return helperProbeResult(err, h)
}

// helperProbeResult reads the load of a program calling h (and nothing
// set up for it) as cilium/ebpf's helper probes do: loaded, or EACCES (the
// verifier got past the call to its arguments), is a helper the program
// may call; EINVAL with "invalid func" is a helper the kernel does not
// know, with "unknown func" or "cannot use helper" one the program's type
// may not call, and ENOTSUPP with "not supported for program type" too
// (bpf_get_func_ip): those are ebpf.ErrNotSupported.
func helperProbeResult(err error, h asm.BuiltinFunc) error {
	var ve *ebpf.VerifierError
	if err == nil || !errors.As(err, &ve) {
		return err
	}
	tag := fmt.Sprintf("#%d", int32(h))
	last := ve.Log[max(len(ve.Log)-5, 0):]
	has := func(needles ...string) bool {
		return slices.ContainsFunc(last, func(l string) bool {
			for _, n := range needles {
				if !strings.Contains(l, n) {
					return false
				}
			}
			return true
		})
	}
	switch {
	case errors.Is(err, unix.EACCES):
		return nil
	case errors.Is(err, unix.EINVAL) && has("invalid func", tag):
		return fmt.Errorf("%s: %w", h, ebpf.ErrNotSupported)
	case errors.Is(err, unix.EINVAL) && (has("unknown func") || has("cannot use helper", tag)),
		errors.Is(err, errENOTSUPP) && has("not supported for program type"):
		return fmt.Errorf("program of this type cannot use %s: %w", h, ebpf.ErrNotSupported)
	}
	return err
}

// errENOTSUPP is the kernel's own "not supported" (524), which a helper
// probe gets for a helper the kernel has but not for the program's type.
const errENOTSUPP = unix.Errno(524)

// attachingProbes are the program types whose cilium/ebpf probe names a
// kernel function to attach to, made as cilium/ebpf's features makes them.
// Its probe reads the kernel's BTF anew each time to find the function
// (300 ms under TCG, for each of the two); probeAttaching loads the same
// program with the agent's one parse of it (kernelbtf.Cache).
var attachingProbes = map[ebpf.ProgramType]func() *ebpf.ProgramSpec{
	ebpf.Tracing: func() *ebpf.ProgramSpec {
		return &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "bpf_init"}
	},
	ebpf.LSM: func() *ebpf.ProgramSpec {
		return &ebpf.ProgramSpec{Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_mprotect", License: "GPL"}
	},
}

// probeAttaching loads spec, a program that returns 0, and reads the
// outcome as cilium/ebpf's probes do: EINVAL or E2BIG is a kernel that
// does not know the type (ebpf.ErrNotSupported), and so is a kernel
// without BTF (cilium/ebpf says ErrNotSupported itself).
func probeAttaching(spec *ebpf.ProgramSpec) error {
	spec.Instructions = asm.Instructions{asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()}
	coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"probe": spec}},
		ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogDisabled: true}, Cache: kernelbtf.Cache()})
	if err == nil {
		coll.Close()
		return nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.E2BIG) {
		return fmt.Errorf("%s: %w", spec.Type, ebpf.ErrNotSupported)
	}
	return fmt.Errorf("detect support for %s: %w", spec.Type, err)
}

// featuresEnv is what the features check runs against.
type featuresEnv struct {
	Release string
	Machine string
	Configs []string
	Probe   prober
}

func init() { agentChecks.Add(protocol.FeaturesCheck.Def(), checkFeatures) }

// checkFeatures is the "features" check: probe program types, map types and
// helper × program type pairs, and compare each outcome with the upstream
// release that added the feature (bpfprobe.Features). It fails when a
// feature is missing from a kernel at or past that release (and built with
// the feature's config option); features present earlier are backports,
// reported in the details.
func checkFeatures(ctx context.Context, params json.RawMessage) (Outcome, error) {
	if err := removeMemlock(); err != nil {
		return Outcome{}, err
	}
	release, machine := uname()
	env := featuresEnv{Release: release, Machine: machine, Configs: defaultBTFEnv().Configs, Probe: kernelProber{}}
	return env.check(ctx, params)
}

func (env featuresEnv) check(ctx context.Context, params json.RawMessage) (Outcome, error) {
	p, err := protocol.FeaturesCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	v, err := bpfprobe.ParseRelease(env.Release)
	if err != nil {
		return Outcome{}, fmt.Errorf("kernel version: %w", err)
	}
	cfg, _, err := kconfig.ReadFirst(env.Configs)
	if err != nil {
		cfg = nil // unknown config: judge on the version alone
	}

	programs, err := featureList(bpfprobe.KindProgram, p.Programs)
	if err != nil {
		return Outcome{}, err
	}
	maps, err := featureList(bpfprobe.KindMap, p.Maps)
	if err != nil {
		return Outcome{}, err
	}
	helpers, err := featureList(bpfprobe.KindHelper, p.Helpers)
	if err != nil {
		return Outcome{}, err
	}

	d := &protocol.FeaturesDetails{Kernel: v.String(), Missing: []string{}, Backports: []string{}}
	record := func(f bpfprobe.Feature, progType string, err error) {
		r := protocol.FeatureResult{Feature: f.ID(), Program: progType, Since: f.SinceOn(env.Machine)}
		var supported *bool
		switch {
		case err == nil:
			r.Status, supported = "supported", new(true)
			d.Supported++
		case errors.Is(err, ebpf.ErrNotSupported),
			// "func bpf_get_func_ip#173 not supported for program type 5":
			// the kernel has the helper, not for this program type
			// (ENOTSUPP; cilium/ebpf prints it as EOPNOTSUPP's words).
			progType != "" && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, errENOTSUPP)):
			r.Status, supported = "unsupported", new(false)
			d.Unsupported++
		default:
			r.Status, r.Error = "error", text.Truncate(err.Error(), 256)
			d.Errors++
		}
		r.Verdict = string(bpfprobe.Judge(f, progType, supported, v, env.Machine, cfg))
		name := f.ID()
		if progType != "" {
			name += "@" + progType
		}
		switch bpfprobe.Verdict(r.Verdict) {
		case bpfprobe.VerdictMissing:
			d.Missing = append(d.Missing, name)
		case bpfprobe.VerdictBackport:
			d.Backports = append(d.Backports, name)
		}
		d.Results = append(d.Results, r)
	}

	for _, f := range programs {
		if ctx.Err() != nil {
			return Outcome{Details: d}, ctx.Err()
		}
		record(f, "", env.Probe.programType(f.Program))
	}
	for _, f := range maps {
		if ctx.Err() != nil {
			return Outcome{Details: d}, ctx.Err()
		}
		record(f, "", env.Probe.mapType(f.Map))
	}
	for _, f := range helpers {
		for _, name := range bpfprobe.HelperProgramTypes {
			if ctx.Err() != nil {
				return Outcome{Details: d}, ctx.Err()
			}
			pt, _ := bpfprobe.Lookup(bpfprobe.KindProgram, name)
			record(f, name, env.Probe.helper(pt.Program, f.Helper))
		}
	}

	o := Outcome{Details: d, Status: protocol.StatusPass}
	o.Message = fmt.Sprintf("%d supported, %d unsupported, %d probe errors", d.Supported, d.Unsupported, d.Errors)
	if len(d.Backports) > 0 {
		o.Message += fmt.Sprintf(", %d backported", len(d.Backports))
	}
	if len(d.Missing) > 0 {
		o.Status = protocol.StatusFail
		o.Message = fmt.Sprintf("unsupported on %s although upstream has them: %s", v, strings.Join(d.Missing, ", "))
	}
	return o, nil
}

// featureList returns the features of kind named in names: none given or
// "all" mean all of them, "none" none.
func featureList(kind bpfprobe.Kind, names []string) ([]bpfprobe.Feature, error) {
	switch {
	case len(names) == 0 || slices.Equal(names, []string{"all"}):
		names = bpfprobe.Names(kind)
	case slices.Equal(names, []string{"none"}):
		return nil, nil
	}
	var fs []bpfprobe.Feature
	for _, n := range names {
		f, ok := bpfprobe.Lookup(kind, n)
		if !ok {
			return nil, fmt.Errorf("unknown %s %q", kind, n)
		}
		fs = append(fs, f)
	}
	return fs, nil
}
