package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vmrunner/vmrunner/bpfprobe"
	"github.com/vmrunner/vmrunner/protocol"
)

// Verifier log settings. A rejected program is loaded again at the most
// detailed level; cilium/ebpf grows the buffer from logSizeStart when the
// kernel says it is too small (ENOSPC).
const (
	logLevelDetailed = ebpf.LogLevelInstruction | ebpf.LogLevelBranch | ebpf.LogLevelStats
	logSizeStart     = 4 << 20
	// maxLogArtifact bounds one log sent to the host, so that the artifact
	// message, JSON escaping included, fits protocol.MaxMessageSize. The
	// end of the log is kept: that is where the verifier says why.
	maxLogArtifact = 600 << 10
)

func init() { agentChecks.Add(protocol.VerifierCheck.Def(), checkVerifier) }

// checkVerifier is the "verifier" check: load every program of every object
// (or the programs named) with its maps, and report one result per program,
// "verifier/<object>/<program>", with the verifier's log as an artifact.
func checkVerifier(ctx context.Context, params json.RawMessage) (Outcome, error) {
	if err := removeMemlock(); err != nil {
		return Outcome{}, err
	}
	release, _ := uname()
	return verifyObjects(ctx, release, params)
}

func verifyObjects(ctx context.Context, release string, params json.RawMessage) (Outcome, error) {
	p, err := protocol.VerifierCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	kv, kvErr := bpfprobe.ParseRelease(release)

	var o Outcome
	found := map[string]bool{}
	for _, obj := range p.Objects {
		objName := sanitizeName(strings.TrimSuffix(path.Base(obj), ".o"))
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			o.Sub = append(o.Sub, protocol.Result{
				Check: "verifier/" + objName, Status: protocol.StatusError,
				Message: truncateText(fmt.Sprintf("read object %s: %v", path.Base(obj), err), 512),
			})
			continue
		}
		names := make([]string, 0, len(spec.Programs))
		for name := range spec.Programs {
			if len(p.Programs) == 0 || slices.Contains(p.Programs, name) {
				names = append(names, name)
				found[name] = true
			}
		}
		slices.Sort(names)
		for _, prog := range names {
			if err := ctx.Err(); err != nil {
				return o, err
			}
			start := time.Now()
			v := verifyProgram(spec, prog, p.LogAlways)
			v.judge(p.Expect, objName, kv, kvErr)
			res, art := v.report(objName, release)
			res.DurationMS = time.Since(start).Milliseconds()
			o.Sub = append(o.Sub, res)
			o.Artifacts = append(o.Artifacts, art)
		}
	}
	for _, name := range p.Programs {
		if !found[name] {
			obj := sanitizeName(strings.TrimSuffix(path.Base(p.Objects[0]), ".o"))
			o.Sub = append(o.Sub, protocol.Result{
				Check: "verifier/" + obj + "/" + sanitizeName(name), Status: protocol.StatusError,
				Message: truncateText(fmt.Sprintf("no program %q in %s", name, strings.Join(baseNames(p.Objects), ", ")), 512),
			})
		}
	}
	if len(o.Sub) == 0 {
		return o, errors.New("the objects have no programs")
	}
	return o, nil
}

// verification is the outcome of loading one program.
type verification struct {
	name    string
	d       protocol.VerifierDetails
	log     string
	err     error // not a verifier rejection: the load could not be tried
	reason  string
	status  protocol.Status
	message string
}

// verifyProgram loads program name of spec with the maps it uses. A
// rejected program is loaded a second time with the detailed log.
func verifyProgram(spec *ebpf.CollectionSpec, name string, detailed bool) *verification {
	v := &verification{name: name}
	ps := spec.Programs[name]
	v.d.Program, v.d.Type, v.d.Instructions = name, ps.Type.String(), len(ps.Instructions)

	level := ebpf.LogLevelStats
	if detailed {
		level = logLevelDetailed
	}
	log, verified, verr, err := loadOneInfo(spec, name, level)
	v.d.VerifiedInstructions = verified
	if verr != nil && !detailed {
		level = logLevelDetailed
		if l2, v2, err2 := loadOne(spec, name, level); v2 != nil {
			log, verr, err = l2, v2, err2
		}
	}
	v.d.LogLevel = uint32(level)
	v.log = log
	switch {
	case verr != nil:
		v.reason = lastVerifierLine(verr.Log)
		if v.reason == "" {
			v.reason = truncateText(verr.Error(), 512)
		}
	case err != nil:
		v.err = err
	default:
		v.d.Loaded = true
	}
	v.d.InsnsProcessed, v.d.States, v.d.PeakStates, v.d.VerificationTimeNS = parseVerifierStats(log)
	v.d.LogBytes = len(log)
	return v
}

// loadOne loads one program and the maps it references into the kernel and
// closes them. It returns the verifier log; a rejection by the verifier is
// verr, any other failure err.
func loadOne(spec *ebpf.CollectionSpec, name string, level ebpf.LogLevel) (string, *ebpf.VerifierError, error) {
	log, _, verr, err := loadOneInfo(spec, name, level)
	return log, verr, err
}

// loadOneInfo is loadOne, also returning the number of instructions the
// kernel says it verified (ProgramInfo, 5.16+; 0 when unknown).
func loadOneInfo(spec *ebpf.CollectionSpec, name string, level ebpf.LogLevel) (string, uint32, *ebpf.VerifierError, error) {
	s := spec.Copy()
	prog := s.Programs[name]
	used := map[string]bool{}
	for _, ins := range prog.Instructions {
		if ref := ins.Reference(); ref != "" {
			used[ref] = true
		}
	}
	for m, ms := range s.Maps {
		if !used[m] {
			delete(s.Maps, m)
			continue
		}
		if ms.Type == ebpf.ProgramArray {
			ms.Contents = nil // other programs are not loaded
		}
	}
	s.Programs = map[string]*ebpf.ProgramSpec{name: prog}
	coll, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: level, LogSizeStart: logSizeStart},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return strings.Join(ve.Log, "\n"), 0, ve, nil
		}
		return "", 0, nil, err
	}
	defer coll.Close()
	loaded := coll.Programs[name]
	var verified uint32
	if info, err := loaded.Info(); err == nil {
		verified, _ = info.VerifiedInstructions()
	}
	return loaded.VerifierLog, verified, nil, nil
}

// judge sets the status from the load and the expectation for the program
// ("PROGRAM" or "OBJECT/PROGRAM" in expect).
func (v *verification) judge(expect map[string]protocol.VerifierExpect, object string, kv bpfprobe.Version, kvErr error) {
	if kvErr == nil {
		v.d.Kernel = kv.String()
	}
	e, ok := expect[object+"/"+v.name]
	if !ok {
		e = expect[v.name]
	}
	if v.err != nil {
		v.status, v.message = protocol.StatusError, truncateText(fmt.Sprintf("load %s: %v", v.name, v.err), 512)
		return
	}
	if len(e.Fail) > 0 {
		if kvErr != nil {
			v.status, v.message = protocol.StatusError, fmt.Sprintf("cannot judge expectations: %v", kvErr)
			return
		}
		rng, in, err := bpfprobe.AnyContains(e.Fail, kv)
		if err != nil {
			v.status, v.message = protocol.StatusError, err.Error()
			return
		}
		v.d.ExpectedFail, v.d.ExpectRange = in, rng
	}
	switch {
	case v.d.Loaded && v.d.ExpectedFail:
		v.status = protocol.StatusFail
		v.message = fmt.Sprintf("loaded, but expected to be rejected on %s (%s)", v.d.Kernel, v.d.ExpectRange)
	case v.d.Loaded:
		v.status = protocol.StatusPass
		v.message = fmt.Sprintf("loaded: %d insns processed, peak states %d", v.d.InsnsProcessed, v.d.PeakStates)
	case v.d.ExpectedFail:
		v.status = protocol.StatusPass
		v.message = fmt.Sprintf("rejected as expected (%s): %s", v.d.ExpectRange, v.reason)
	default:
		v.status, v.message = protocol.StatusFail, "rejected: "+v.reason
	}
}

// report returns the result and the log artifact of v.
func (v *verification) report(object, release string) (protocol.Result, protocol.Artifact) {
	v.d.Object = object
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
	art := protocol.Artifact{Check: check, Name: check + ".log", Data: header + data + "\n", Truncated: truncated}
	details, _ := json.Marshal(v.d) // plain struct: cannot fail
	res := protocol.Result{Check: check, Status: v.status, Message: v.message, Details: details}
	return res, art
}

// statsRE match the verifier's statistics lines (LogLevelStats).
var (
	processedRE = regexp.MustCompile(`processed (\d+) insns \(limit \d+\) max_states_per_insn \d+ total_states (\d+) peak_states (\d+)`)
	verifyTime  = regexp.MustCompile(`verification time (\d+) usec`)
)

// parseVerifierStats reads instructions processed, total and peak states,
// and the verification time from a verifier log; absent figures are 0.
func parseVerifierStats(log string) (insns, states, peak int, timeNS int64) {
	if m := processedRE.FindAllStringSubmatch(log, -1); len(m) > 0 {
		last := m[len(m)-1]
		insns, _ = strconv.Atoi(last[1])
		states, _ = strconv.Atoi(last[2])
		peak, _ = strconv.Atoi(last[3])
	}
	if m := verifyTime.FindAllStringSubmatch(log, -1); len(m) > 0 {
		us, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
		timeNS = us * 1000
	}
	return insns, states, peak, timeNS
}

// lastVerifierLine is the last line of a log that says something about the
// program rather than the verifier's own statistics.
func lastVerifierLine(log []string) string {
	for i := len(log) - 1; i >= 0; i-- {
		l := strings.TrimSpace(log[i])
		switch {
		case l == "",
			strings.HasPrefix(l, "processed "),
			strings.HasPrefix(l, "verification time"),
			strings.HasPrefix(l, "stack depth"),
			strings.HasPrefix(l, "max_states_per_insn"):
			continue
		}
		return truncateText(l, 512)
	}
	return ""
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

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = path.Base(p)
	}
	return out
}
