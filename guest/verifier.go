package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/bpfobject"
	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/guest/kernelbtf"
	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/reason"
)

// Verifier log settings. Every program is loaded first with only the
// verifier's statistics (LogLevelStats): a small log whatever the program.
// A rejected program (or, for repro, any program) is loaded again with the
// most detailed log, unless the first load processed more than
// detailedInsnLimit instructions: at 150-410 bytes per processed
// instruction (measured on probes.o), the detailed log of a program at the
// one-million limit is most of a gigabyte, which the guest would have to
// hold; at the limit it is tens of megabytes.
const (
	logLevelDetailed  = ebpf.LogLevelInstruction | ebpf.LogLevelBranch | ebpf.LogLevelStats
	logSizeStats      = 256 << 10
	detailedInsnLimit = 100_000
	// detailedBytesPerInsn sizes the detailed log's first buffer, so that
	// cilium/ebpf rarely has to load the program a third time to grow it.
	detailedBytesPerInsn = 256
	// maxLogArtifact bounds one log sent to the host, so that the artifact
	// message, JSON escaping included, fits protocol.MaxMessageSize. The
	// end of the log is kept: that is where the verifier says why.
	maxLogArtifact = 600 << 10
	// progressEvery is how often a long load says it is still going.
	progressEvery = 30 * time.Second
	// bpffsDir is where pin directories are made in the guest.
	bpffsDir = "/sys/fs/bpf"
)

func init() { agentChecks.Add(protocol.VerifierCheck.Def(), checkVerifier) }

// checkVerifier is the "verifier" check: load every object as its own
// loader would, and report one result per program,
// "verifier/<object>/<program>", with the verifier's log as an artifact, and
// one per object, "verifier/<object>", for the loader's other steps.
func checkVerifier(ctx context.Context, params json.RawMessage) (Outcome, error) {
	if err := removeMemlock(); err != nil {
		return Outcome{}, err
	}
	release, machine := uname()
	return verifyObjects(ctx, verifierEnv{
		release: release,
		arch:    archName(machine),
		bpffs:   bpffsDir,
		modules: loadNamedModules,
	}, params)
}

// verifierEnv is what the check needs from the machine it runs on.
type verifierEnv struct {
	release string // uname -r
	arch    string // x86_64 or arm64
	bpffs   string // a bpffs mount for pin directories
	// modules loads kernel modules by name with their dependencies; nil
	// where modules cannot be loaded.
	modules func(names []string) error
}

// archName maps uname -m to vmrunner's arch names.
func archName(machine string) string {
	if machine == "aarch64" {
		return "arm64"
	}
	return machine
}

// verifierRun is one run of the check.
type verifierRun struct {
	ctx     context.Context
	env     verifierEnv
	p       protocol.VerifierParams
	kv      bpfprobe.Version
	kvErr   error
	out     Outcome
	found   map[string]bool          // programs named in p.Programs that some object has
	targets map[string]*objectLoader // attach targets' objects, by guest path
	emitted int
}

func verifyObjects(ctx context.Context, env verifierEnv, params json.RawMessage) (Outcome, error) {
	p, err := protocol.VerifierCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	r := &verifierRun{
		ctx:     ctx,
		env:     env,
		p:       p,
		found:   map[string]bool{},
		targets: map[string]*objectLoader{},
	}
	r.kv, r.kvErr = bpfprobe.ParseRelease(env.release)
	defer r.closeTargets()

	var first string
	for _, obj := range p.Objects {
		if obj.Arch != "" && obj.Arch != env.arch {
			continue // the other arch's bpf2go build
		}
		if first == "" {
			first = objectName(obj)
		}
		if err := r.object(obj); err != nil {
			return r.out, err
		}
	}
	for _, name := range p.Programs {
		if !r.found[name] && first != "" {
			res := protocol.Result{
				Check: "verifier/" + first + "/" + sanitizeName(name), Status: protocol.StatusError, ErrorKind: protocol.ErrorKindLoad,
				Message: text.Truncate(fmt.Sprintf("no program %q in %s", name, strings.Join(r.objectFiles(), ", ")), 512),
			}
			if err := r.emit(res); err != nil {
				return r.out, err
			}
		}
	}
	if r.emitted == 0 {
		return Outcome{Status: protocol.StatusSkip, Message: "no object for " + env.arch}, nil
	}
	return r.out, nil
}

// emit reports one result and its artifacts.
func (r *verifierRun) emit(res protocol.Result, arts ...protocol.Artifact) error {
	r.emitted++
	return emit(r.ctx, &r.out, res, arts...)
}

// objectName names an object's results.
func objectName(obj protocol.VerifierObject) string {
	if obj.Name != "" {
		return sanitizeName(obj.Name)
	}
	return sanitizeName(bpfobject.ParseName(path.Base(obj.Path)).Object)
}

func (r *verifierRun) objectFiles() []string {
	var out []string
	for _, obj := range r.p.Objects {
		if obj.Arch == "" || obj.Arch == r.env.arch {
			out = append(out, path.Base(obj.Path))
		}
	}
	return out
}

// object loads one object and reports its programs, then the object.
func (r *verifierRun) object(obj protocol.VerifierObject) error {
	name := objectName(obj)
	od := protocol.VerifierObjectDetails{Object: name, File: path.Base(obj.Path), Modules: obj.Modules}
	start := time.Now()
	var failed []string // loader steps that failed

	if len(obj.Modules) > 0 {
		if err := r.loadModules(obj.Modules); err != nil {
			failed = append(failed, "load modules: "+err.Error())
		}
	}
	spec, err := r.objectSpec(obj)
	if err != nil {
		return r.objectResult(od, start, append(failed, err.Error()), nil, reason.Verdict{})
	}
	od.Programs, od.Maps, od.Variables = len(spec.Programs), len(spec.Maps), len(spec.Variables)
	od.Constants, od.Resized = slices.Sorted(maps.Keys(obj.Constants)), slices.Sorted(maps.Keys(obj.Maps))

	// The agent's kernel BTF, asked for after the object's modules are
	// loaded: kept from plan to plan, renewed when modules came.
	loader := newObjectLoader(spec, r.env.bpffs, kernelbtf.Cache())
	var names, skipped []string
	for pn, ps := range spec.Programs {
		if len(r.p.Programs) == 0 || slices.Contains(r.p.Programs, pn) {
			names = append(names, pn)
			r.found[pn] = true
		} else {
			skipped = append(skipped, pn)
		}
		if ps.Type == ebpf.UnspecifiedProgram {
			od.Programs-- // not a program a loader loads
		}
	}
	slices.Sort(names)
	for _, pn := range names {
		if err := r.ctx.Err(); err != nil {
			loader.close()
			return err
		}
		v := r.verifyProgram(loader, obj, name, pn)
		if v.d.Loaded {
			od.Loaded++
		}
		res, art := v.report(name, r.env.release)
		if err := r.emit(res, art); err != nil {
			loader.close()
			return err
		}
	}
	var why reason.Verdict // of the first failed step
	for _, se := range loader.finish(skipped) {
		if len(failed) == 0 {
			why = stepVerdict(spec, se)
		}
		failed = append(failed, se.Error())
	}
	var attachFailed []string
	if r.p.Attach {
		attachFailed = attachStructOps(loader)
	}
	od.Pinned = loader.pinned()
	if err := loader.close(); err != nil {
		failed = append(failed, err.Error())
	}
	return r.objectResult(od, start, failed, attachFailed, why)
}

// objectSpec reads an object and applies the matrix's constants and map
// sizes, as a loader sets them before loading.
func (r *verifierRun) objectSpec(obj protocol.VerifierObject) (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpec(obj.Path)
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", path.Base(obj.Path), err)
	}
	for _, cn := range slices.Sorted(maps.Keys(obj.Constants)) {
		b, err := bpfobject.ConstantBytes(spec, cn, obj.Constants[cn])
		if err == nil {
			err = spec.Variables[cn].Set(b)
		}
		if err != nil {
			return nil, fmt.Errorf("set constant %s: %w", cn, err)
		}
	}
	for _, mn := range slices.Sorted(maps.Keys(obj.Maps)) {
		n := obj.Maps[mn].MaxEntries
		if err := bpfobject.CheckMaxEntries(spec, mn, n); err != nil {
			return nil, fmt.Errorf("set map size: %w", err)
		}
		spec.Maps[mn].MaxEntries = n
	}
	return spec, nil
}

// objectResult reports the object's own record: its loader steps.
// why is the first failed step's reason, if it is known; failed steps
// without one are LOADER, attach failures ATTACH_FAILED.
func (r *verifierRun) objectResult(od protocol.VerifierObjectDetails, start time.Time, failed, attachFailed []string, why reason.Verdict) error {
	od.Failed = failed
	res := protocol.Result{Check: "verifier/" + od.Object}
	_, expected, rng, judgeErr := r.expected(od.Object)
	switch {
	case judgeErr != nil:
		res.Status, res.Message = protocol.StatusError, judgeErr.Error()
		res.Reason = protocol.ReasonBadInput
	case len(failed) > 0 && expected:
		res.Status, res.Message = protocol.StatusPass, fmt.Sprintf("failed as expected (%s): %s", rng, failed[0])
	case len(failed) > 0:
		res.Status, res.ErrorKind = protocol.StatusError, protocol.ErrorKindLoad
		res.Message = strings.Join(failed, "; ")
		if why.Reason == "" {
			why = reason.Verdict{Reason: protocol.ReasonLoader, Detail: text.Truncate(failed[0], protocol.MaxReasonDetail)}
		}
		res.Reason, res.ReasonDetail = why.Reason, why.Detail
	case len(attachFailed) > 0 && expected:
		res.Status, res.Message = protocol.StatusPass, fmt.Sprintf("cannot attach, as expected (%s): %s", rng, attachFailed[0])
	case len(attachFailed) > 0:
		res.Status, res.Message = protocol.StatusFail, "loaded but cannot attach: "+strings.Join(attachFailed, "; ")
		res.Reason, res.ReasonDetail = protocol.ReasonAttachFailed, text.Truncate(attachFailed[0], protocol.MaxReasonDetail)
	case expected:
		res.Status, res.Message = protocol.StatusFail, fmt.Sprintf("loaded, but expected to fail on %s (%s)", r.kv, rng)
		res.Reason, res.ReasonDetail = protocol.ReasonUnexpectedLoad, "expected to fail on "+rng
	default:
		res.Status, res.Message = protocol.StatusPass, objectSummary(od)
	}
	res.Message = text.Truncate(res.Message, 1024)
	res.DurationMS = time.Since(start).Milliseconds()
	res.Details, _ = json.Marshal(od) // plain struct: cannot fail
	return r.emit(res)
}

func objectSummary(od protocol.VerifierObjectDetails) string {
	s := fmt.Sprintf("%d of %d programs loaded, %d maps, %d variables", od.Loaded, od.Programs, od.Maps, od.Variables)
	if len(od.Pinned) > 0 {
		s += fmt.Sprintf(", %d pinned by name", len(od.Pinned))
	}
	if od.Programs == 0 {
		s = fmt.Sprintf("no programs; %d maps, %d variables created", od.Maps, od.Variables)
	}
	return s
}

// expected says whether the object or program key is expected to fail on
// this kernel, and by which range.
func (r *verifierRun) expected(keys ...string) (protocol.VerifierExpect, bool, string, error) {
	var e protocol.VerifierExpect
	var ok bool
	for _, k := range keys {
		if e, ok = r.p.Expect[k]; ok {
			break
		}
	}
	if !ok || len(e.Fail) == 0 {
		return e, false, "", nil
	}
	if r.kvErr != nil {
		return e, false, "", fmt.Errorf("cannot judge expectations: %w", r.kvErr)
	}
	rng, in, err := bpfprobe.AnyContains(e.Fail, r.kv)
	return e, in, rng, err
}

// loadModules loads the modules an object needs.
func (r *verifierRun) loadModules(names []string) error {
	if r.env.modules == nil {
		return errors.New("this guest cannot load modules")
	}
	return r.env.modules(names)
}

// target loads the program a freplace or fentry/fexit-on-BPF program
// attaches to, from its own copy of the target object.
func (r *verifierRun) target(t protocol.VerifierTarget) (*ebpf.Program, error) {
	l := r.targets[t.Object]
	if l == nil {
		obj := protocol.VerifierObject{Path: t.Object}
		for _, o := range r.p.Objects {
			if o.Path == t.Object {
				obj = o // with its constants and sizes
				break
			}
		}
		spec, err := r.objectSpec(obj)
		if err != nil {
			return nil, err
		}
		l = newObjectLoader(spec, r.env.bpffs, kernelbtf.Cache())
		r.targets[t.Object] = l
	}
	if p := l.progs[t.Program]; p != nil {
		return p, nil
	}
	p, err := l.loadProgram(t.Program, loadOptions{level: ebpf.LogLevelStats, logSize: logSizeStats})
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return nil, fmt.Errorf("%s of %s was rejected: %s", t.Program, path.Base(t.Object), reason.LastLine(ve.Log))
	}
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", t.Program, path.Base(t.Object), err)
	}
	return p, nil
}

func (r *verifierRun) closeTargets() {
	for _, l := range r.targets {
		_ = l.close()
	}
}

// verification is the outcome of loading one program.
type verification struct {
	name     string
	d        protocol.VerifierDetails
	log      string
	rejected bool   // by the verifier (or the kernel, before it walked the program)
	reason   string // the log's decisive line
	err      error  // not a verifier rejection: the load could not be tried
	// unsupported is an err saying the kernel lacks something
	// (ebpf.ErrNotSupported): a kfunc, a program or map type.
	unsupported bool
	attachErr   error
	// loadErr is the load's error as the loader returned it, and noTarget
	// a program that needs a target program and was given none.
	loadErr  error
	noTarget bool
	verdict  reason.Verdict // why it did not load or attach
	skipped  string         // why the program is not loaded at all
	hint     string         // how to fix a loader error
	duration time.Duration
	status   protocol.Status
	kind     string
	message  string
}

// verifyProgram loads one program of an object and, when asked, attaches
// it.
func (r *verifierRun) verifyProgram(l *objectLoader, obj protocol.VerifierObject, object, name string) *verification {
	start := time.Now()
	ps := l.spec.Programs[name]
	v := &verification{name: name}
	v.d.Object, v.d.Program, v.d.Type, v.d.Section, v.d.Instructions = object, name, ps.Type.String(), ps.SectionName, len(ps.Instructions)
	defer func() {
		v.duration = time.Since(start)
		v.verdict = r.classify(l, v, ps)
		r.judge(v, object)
	}()

	if ps.Type == ebpf.UnspecifiedProgram {
		// NewCollection skips such programs (functions in sections of
		// their own, say), and so does every bpf2go loader.
		v.skipped = fmt.Sprintf("not loaded: section %q names no program type; cilium/ebpf's loaders skip it too", ps.SectionName)
		return v
	}
	var target *ebpf.Program
	if t, ok := obj.AttachTo[name]; ok {
		p, err := r.target(t)
		if err != nil {
			v.err = &stepError{step: "load attach target", err: err}
			v.loadErr = v.err
			v.d.Step = "load attach target"
			return v
		}
		target = p
	} else if ps.Type == ebpf.Extension {
		v.noTarget = true
		v.err = &stepError{step: "attach target", err: fmt.Errorf("a freplace program needs the program it replaces: set attach_to: {%s: {object: FILE, program: NAME}}", name)}
		v.d.Step = "attach target"
		return v
	}

	prog, err := r.load(l, object, name, loadOptions{level: ebpf.LogLevelStats, logSize: logSizeStats, target: target})
	v.d.LogLevel = uint32(ebpf.LogLevelStats)
	v.take(prog, err)
	if v.unsupported && ps.Type == ebpf.Tracing && target == nil {
		// cilium/ebpf looked for the target among the kernel's functions.
		v.hint = fmt.Sprintf(" (no kernel function %s here; if it is a function of a BPF program, give that program: attach_to: {%s: {object: FILE, program: NAME}})", ps.AttachTo, name)
	}
	stats := parseVerifierStats(v.log)
	if (v.rejected || (v.d.Loaded && r.p.LogAlways)) && !reason.TooComplex(v.reason) && stats.insns <= detailedInsnLimit {
		size := uint32(min(stats.insns*detailedBytesPerInsn+64<<10, 256<<20))
		p2, err2 := r.load(l, object, name, loadOptions{level: logLevelDetailed, logSize: size, target: target})
		var ve *ebpf.VerifierError
		switch {
		case errors.As(err2, &ve) && v.rejected:
			v.log = strings.Join(ve.Log, "\n")
			v.d.LogLevel = uint32(logLevelDetailed)
			v.reason, v.d.CORE = reason.DecisiveLine(ve.Log)
		case err2 == nil && v.d.Loaded:
			prog = p2
			v.log = p2.VerifierLog
			v.d.LogLevel = uint32(logLevelDetailed)
		}
	}
	if v.rejected {
		// The log of the detailed load, if there was one.
		var ve *ebpf.VerifierError
		if errors.As(v.loadErr, &ve) {
			v.loadErr = &ebpf.VerifierError{Cause: ve.Cause, Log: strings.Split(v.log, "\n")}
		}
	}
	v.d.TooComplex = v.rejected && reason.TooComplex(v.reason)
	st := stats
	if d := parseVerifierStats(v.log); d.found {
		st = d
	}
	v.d.InsnsProcessed, v.d.States, v.d.PeakStates, v.d.VerificationTimeNS = st.insns, st.states, st.peak, st.timeNS
	v.d.InsnsLimit, v.d.StackDepth = st.limit, st.stack
	v.d.LogBytes = len(v.log)
	if v.d.Loaded {
		if info, err := prog.Info(); err == nil {
			v.d.VerifiedInstructions, _ = info.VerifiedInstructions()
		}
		if r.p.Attach {
			var tried bool
			bin := strings.ReplaceAll(obj.UprobeBinary, "{arch}", r.env.arch)
			v.d.Attach, tried, v.attachErr = attachProgram(ps, prog, target, bin)
			v.d.Attached = tried && v.attachErr == nil
			if v.attachErr != nil {
				v.d.AttachError = text.Truncate(v.attachErr.Error(), 512)
			}
		}
	}
	return v
}

// load loads one program, saying every progressEvery that it still runs:
// the verifier can take minutes on a large program under emulation.
func (r *verifierRun) load(l *objectLoader, object, name string, o loadOptions) (*ebpf.Program, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		start := time.Now()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress(r.ctx, fmt.Sprintf("verifier: loading %s/%s, %s so far", object, name, time.Since(start).Round(time.Second)))
			}
		}
	}()
	return l.loadProgram(name, o)
}

// take records the outcome of a load.
func (v *verification) take(prog *ebpf.Program, err error) {
	v.loadErr = err
	var ve *ebpf.VerifierError
	var se *stepError
	var errno unix.Errno
	if errors.As(err, &errno) {
		v.d.Errno = unix.ErrnoName(errno)
	}
	switch {
	case errors.As(err, &ve):
		v.rejected = true
		v.log = strings.Join(ve.Log, "\n")
		v.reason, v.d.CORE = reason.DecisiveLine(ve.Log)
		if v.reason == "" {
			v.reason = text.Truncate(ve.Error(), 512)
		}
	case errors.As(err, &se):
		v.err, v.d.Step = se, se.step
		v.unsupported = errors.Is(err, ebpf.ErrNotSupported)
	case err != nil:
		v.err = err
		v.unsupported = errors.Is(err, ebpf.ErrNotSupported)
	default:
		v.d.Loaded = true
		v.log = prog.VerifierLog
	}
}

// judge sets the status from the load and the expectation for the program
// ("PROGRAM" or "OBJECT/PROGRAM" in expect).
//
// A rejection is fail, or pass when expected; that includes a rejection by
// the verifier's checks before it walks the program (0 insns processed:
// its CFG, BTF and subprogram checks, where an old kernel refuses what it
// does not know). A failure before the verifier ran (a map the kernel
// cannot create, a kfunc it cannot find, a missing attach target, also
// when the kernel is the one saying it is missing) is an error of kind
// load: the input's problem, not the machinery's; expect covers it when the
// kernel lacks what the program needs (ErrNotSupported). A program that
// loaded but cannot attach fails, or passes when expected.
func (r *verifierRun) judge(v *verification, object string) {
	if r.kvErr == nil {
		v.d.Kernel = r.kv.String()
	}
	_, expected, rng, err := r.expected(object+"/"+v.name, v.name)
	if err != nil {
		v.status, v.message = protocol.StatusError, err.Error()
		v.verdict = reason.Verdict{Reason: protocol.ReasonBadInput, Detail: text.Truncate(err.Error(), protocol.MaxReasonDetail)}
		return
	}
	v.d.ExpectedFail, v.d.ExpectRange = expected, rng
	preWalk := v.rejected && v.d.InsnsProcessed == 0
	switch {
	case v.skipped != "":
		v.status, v.message = protocol.StatusSkip, v.skipped
	case v.err != nil && v.unsupported && expected:
		v.status, v.message = protocol.StatusPass, fmt.Sprintf("not supported, as expected (%s): %v", rng, v.err)
	case v.err != nil:
		v.status, v.kind, v.message = protocol.StatusError, protocol.ErrorKindLoad, "load: "+v.err.Error()+v.hint+loadHint(v.err.Error())
	case v.rejected && expected:
		v.status, v.message = protocol.StatusPass, fmt.Sprintf("rejected as expected (%s): %s", rng, v.reason)
	case preWalk && reason.MissingAttachTarget(v.reason):
		v.status, v.kind = protocol.StatusError, protocol.ErrorKindLoad
		v.message = "rejected before the verifier walked it (0 insns processed): " + v.reason + loadHint(v.reason)
	case preWalk:
		v.status, v.message = protocol.StatusFail, "rejected before the verifier walked it (0 insns processed): "+v.reason
	case v.rejected && v.d.TooComplex:
		v.status, v.message = protocol.StatusFail, fmt.Sprintf("rejected: too complex (%d insns processed): %s", v.d.InsnsProcessed, v.reason)
	case v.rejected && v.d.CORE:
		v.status = protocol.StatusFail
		v.message = "rejected: " + v.reason + " (a CO-RE relocation found nothing in this kernel's BTF: an object built for another arch, or a type or field this kernel lacks)"
	case v.rejected:
		v.status, v.message = protocol.StatusFail, "rejected: "+v.reason
	case v.attachErr != nil && expected:
		v.status, v.message = protocol.StatusPass, fmt.Sprintf("loaded, cannot attach, as expected (%s): %v", rng, v.attachErr)
	case v.attachErr != nil:
		v.status, v.message = protocol.StatusFail, "loaded but cannot attach: "+v.attachErr.Error()
	case r.overBudget(v):
		pct := limitPercent(v.d)
		v.status = protocol.StatusFail
		v.message = fmt.Sprintf("over the complexity budget: %d insns processed, %.1f%% of this kernel's limit of %d (budget %g%%)",
			v.d.InsnsProcessed, pct, v.d.InsnsLimit, r.p.Budget.InsnsPercentOfLimit)
		v.verdict = reason.Verdict{Reason: protocol.ReasonComplexityBudget,
			Detail: fmt.Sprintf("%.1f%% of the limit of %d, budget %g%%", pct, v.d.InsnsLimit, r.p.Budget.InsnsPercentOfLimit)}
	case expected:
		v.status = protocol.StatusFail
		v.message = fmt.Sprintf("loaded, but expected to be rejected on %s (%s)", v.d.Kernel, rng)
		v.verdict = reason.Verdict{Reason: protocol.ReasonUnexpectedLoad, Detail: "expected to fail on " + rng}
	default:
		v.status = protocol.StatusPass
		v.message = fmt.Sprintf("loaded: %d insns processed, peak states %d", v.d.InsnsProcessed, v.d.PeakStates)
		if v.d.Attached {
			v.message += "; attached: " + v.d.Attach
		} else if v.d.Attach != "" {
			v.message += "; " + v.d.Attach
		}
	}
	v.message = text.Truncate(v.message, 1024)
}

// loadHint says how to fix the loader errors whose fix is in matrix.yaml.
func loadHint(msg string) string {
	switch {
	case strings.Contains(msg, "MaxEntries may be incorrectly set to zero"):
		return " (its loader sets the size at run time: give it in the matrix, maps: {NAME: {max_entries: N}})"
	case strings.Contains(msg, "kfunc") && strings.Contains(msg, "not supported"):
		return " (a kfunc a module provides needs the module: modules: [NAME] in the matrix)"
	case reason.MissingAttachTarget(msg):
		return " (a tracing or freplace program on a BPF program needs attach_to: {PROGRAM: {object: FILE, program: NAME}} in the matrix)"
	}
	return ""
}

// report returns the result and the log artifact of v.
func (v *verification) report(object, release string) (protocol.Result, protocol.Artifact) {
	check := "verifier/" + object + "/" + sanitizeName(v.name)
	header := fmt.Sprintf("# %s %s on %s, log level %d\n", object, v.name, release, v.d.LogLevel)
	data, truncated := v.log, false
	if len(data) > maxLogArtifact {
		cut := len(data) - maxLogArtifact
		data = fmt.Sprintf("[... %d bytes omitted ...]\n", cut) + data[cut:]
		truncated = true
		v.d.LogTruncated = true
	}
	if v.err != nil && data == "" {
		data = v.err.Error() + "\n"
	}
	if v.rejected && v.d.LogLevel != uint32(logLevelDetailed) {
		data += fmt.Sprintf("\n# log level %d only: the verifier processed %d instructions, too many for the instruction-level log\n", v.d.LogLevel, v.d.InsnsProcessed)
	}
	art := protocol.Artifact{Check: check, Name: check + ".log", Data: header + data + "\n", Truncated: truncated}
	details, _ := json.Marshal(v.d) // plain struct: cannot fail
	res := protocol.Result{
		Check: check, Status: v.status, ErrorKind: v.kind, Message: v.message,
		DurationMS: v.duration.Milliseconds(), Details: details,
		Reason: v.verdict.Reason, ReasonDetail: v.verdict.Detail,
	}
	return res, art
}

// sanitizeName makes s usable as one segment of a result or artifact name.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	s = string(b)
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" || s == "." || s == ".." {
		return "_"
	}
	return s
}

// classify says why a program did not load or attach (package reason),
// asking the kernel whether it has the program's or map's type when a load
// failed before the verifier said anything.
func (r *verifierRun) classify(l *objectLoader, v *verification, ps *ebpf.ProgramSpec) reason.Verdict {
	switch {
	case v.skipped != "":
		return reason.Verdict{}
	case v.noTarget:
		return reason.Verdict{Reason: protocol.ReasonAttachTargetMissing, Detail: "a freplace program needs the program it replaces (attach_to)"}
	}
	in := reason.Load{Err: v.loadErr, Program: ps, AttachErr: v.attachErr, Attach: v.d.Attach, MemlockLimited: memlockLimited()}
	if v.loadErr != nil && v.d.InsnsProcessed == 0 {
		var se *stepError
		if errors.As(v.loadErr, &se) {
			in.KernelTypes = se.kernelTypes
			if ms := l.spec.Maps[se.mapName]; ms != nil {
				in.Map = ms
				in.MapTypeMissing = errors.Is(features.HaveMapType(ms.Type), ebpf.ErrNotSupported)
			}
		}
		var ve *ebpf.VerifierError
		if errors.As(v.loadErr, &ve) && !rejectedWithLog(v.loadErr) {
			// The kernel refused it without a word: its type?
			in.ProgTypeMissing = errors.Is(features.HaveProgramType(ps.Type), ebpf.ErrNotSupported)
		}
	}
	return reason.Classify(in)
}

// rejectedWithLog reports whether err is the verifier's with a log.
func rejectedWithLog(err error) bool {
	var ve *ebpf.VerifierError
	return errors.As(err, &ve) && strings.TrimSpace(strings.Join(ve.Log, "")) != ""
}

// stepVerdict is the reason of an object's loader step that failed: a map
// the kernel cannot create is MAP_TYPE_UNSUPPORTED when the kernel says it
// lacks the map's type.
func stepVerdict(spec *ebpf.CollectionSpec, se *stepError) reason.Verdict {
	in := reason.Load{Err: se, KernelTypes: se.kernelTypes, MemlockLimited: memlockLimited()}
	if ms := spec.Maps[se.mapName]; ms != nil {
		in.Map = ms
		in.MapTypeMissing = errors.Is(features.HaveMapType(ms.Type), ebpf.ErrNotSupported)
	}
	return reason.Classify(in)
}

// overBudget reports whether a program that loaded used more of the
// verifier's instruction limit than the budget allows.
func (r *verifierRun) overBudget(v *verification) bool {
	b := r.p.Budget
	return b != nil && b.InsnsPercentOfLimit > 0 && v.d.Loaded && v.d.InsnsLimit > 0 && limitPercent(v.d) > b.InsnsPercentOfLimit
}

// limitPercent is the share of the kernel's instruction limit a program's
// verification used.
func limitPercent(d protocol.VerifierDetails) float64 {
	if d.InsnsLimit <= 0 {
		return 0
	}
	return float64(d.InsnsProcessed) * 100 / float64(d.InsnsLimit)
}
