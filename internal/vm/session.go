package vm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
)

// sessionLimits bound what one VM's guest may send in total. Past any of
// them the VM fails with a protocol error, so a guest that floods the channel
// costs the host at most these (times the VMs running at once), never more.
type sessionLimits struct {
	Messages int // messages of any kind but output
	// OutputMessages bounds the output messages of test programs on their
	// own: a verbose test suite that runs for an hour may send more of them
	// than every other kind together (the guest sends at most one per
	// stream every 20 ms). Their bytes are not bounded: each goes to its
	// files (bounded, outputSaver) and to the terminal as it comes, so it
	// costs the host one message's memory, and vmrunner exec passes on a
	// program's whole output however large.
	OutputMessages int
	Bytes          int64 // bytes of the other messages read from the channel
	Results        int
	ResultBytes    int   // messages and details of results, kept in memory
	Artifacts      int   // files written under the VM directory
	ArtifactBytes  int64 // their total size (they go to disk as they come)
}

var defaultSessionLimits = sessionLimits{
	Messages:       100_000,
	OutputMessages: 1_000_000,
	Bytes:          1 << 30,
	Results:        10_000,
	ResultBytes:    16 << 20,
	Artifacts:      10_000,
	ArtifactBytes:  256 << 20,
}

// errProtocol marks an error as the guest breaking the protocol.
var errProtocol = errors.New("protocol violation")

// protocolError is a message the session refuses; it matches errProtocol.
type protocolError struct{ msg string }

func (e *protocolError) Error() string        { return e.msg }
func (e *protocolError) Is(target error) bool { return target == errProtocol }

func violation(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// session is the host's side of one conversation with a guest agent, as a
// state machine fed one decoded message at a time: it accepts each message
// only where the protocol allows it (ready; then check-start, log, result,
// artifact; then done, after which nothing), keeps what the guest reported
// within sessionLimits, sanitises every guest string once (package
// internal/text), and tells Run what to do next. It does no I/O but
// writing artifacts, so tests drive it without a VM.
type session struct {
	plan    protocol.Plan
	timeout map[string]time.Duration // planned check → its timeout
	limits  sessionLimits
	arts    *artifactSaver
	outs    *outputSaver
	outArts map[string][]string // output files, once closed

	Ready    *protocol.Ready
	Prepared *protocol.Prepared
	Results  []protocol.Result
	Done     bool
	// Channel is the channel the guest speaks on, set by its first message
	// (protocol.ChannelVirtio or protocol.ChannelConsole).
	Channel string

	// wantBoot is the boot kind of the plan's host state: the guest must
	// answer prepared, with it, before its first check ("" for a plan
	// without host state).
	wantBoot protocol.BootKind

	running        string // the check the guest announced last
	started        map[string]bool
	reported       map[string]bool
	messages       int
	outputMessages int
	bytes          int64
	resultBytes    int
}

// sessionStep is what Run must do after a message.
type sessionStep struct {
	SendPlan bool // ready arrived: send the plan
	// StartCheck is the check the guest began, CheckTimeout its timeout.
	StartCheck   string
	CheckTimeout time.Duration
	// CheckReported: the running check sent its own result.
	CheckReported bool
	SendBye       bool          // done arrived: say bye and wait for the power-off
	Log           *protocol.Log // a line to log, sanitised and truncated
	// Prepared: the guest took the host's clock, entropy and files.
	Prepared *protocol.Prepared
}

// newSession starts a conversation about plan; artifacts go under dir.
func newSession(plan protocol.Plan, dir string, limits sessionLimits) *session {
	s := &session{
		plan: plan, timeout: map[string]time.Duration{}, limits: limits,
		arts:    &artifactSaver{dir: dir, maxCount: limits.Artifacts, maxBytes: limits.ArtifactBytes},
		outs:    &outputSaver{dir: dir, max: MaxSavedOutput},
		started: map[string]bool{}, reported: map[string]bool{},
	}
	for _, c := range plan.Checks {
		s.timeout[c.Name] = time.Duration(c.Timeout)
	}
	return s
}

// restored starts the conversation of a VM restored from a snapshot: the
// agent said ready, on channel, before the VM was saved, and says nothing
// more until it has a plan.
func (s *session) restored(ready protocol.Ready, channel string) {
	r := sanitizeReady(ready)
	s.Ready, s.Channel = &r, channel
}

// sent tells the session that its plan went out: a plan with host state is
// answered with prepared.
func (s *session) sent(plan protocol.Plan) {
	if plan.Host != nil {
		s.wantBoot = plan.Host.Boot
	}
}

// sanitizeReady returns r with every string sanitised and its notes cut.
func sanitizeReady(r protocol.Ready) protocol.Ready {
	r.Agent, r.KernelRelease, r.Machine = text.SanitizeLine(r.Agent), text.SanitizeLine(r.KernelRelease), text.SanitizeLine(r.Machine)
	notes := make([]protocol.Log, len(r.Notes))
	for i, n := range r.Notes {
		notes[i] = protocol.Log{Level: text.SanitizeLine(text.Truncate(n.Level, 16)), Text: text.Sanitize(text.Truncate(n.Text, maxMessage))}
	}
	r.Notes = notes
	return r
}

// close closes the files of programs' output; Artifacts lists them after.
func (s *session) close() {
	if s.outArts == nil {
		s.outArts = s.outs.close()
	}
}

// Artifacts maps a result's check name to the files saved for it, relative
// to the VM directory: artifacts, and programs' output once closed.
func (s *session) Artifacts() map[string][]string {
	all := map[string][]string{}
	for check, names := range s.arts.saved {
		all[check] = append(all[check], names...)
	}
	for check, names := range s.outArts {
		all[check] = append(all[check], names...)
	}
	return all
}

// Running is the check the guest was running: "" before the first, once
// the last one reported its own result, and after done.
func (s *session) Running() string {
	if s.reported[s.running] {
		return ""
	}
	return s.running
}

// acceptOn takes one message that arrived on channel: the guest speaks on
// one channel, the one its first message came on, and a message on the
// other is refused.
func (s *session) acceptOn(channel string, m protocol.Message, size int) (sessionStep, error) {
	if s.Channel == "" {
		s.Channel = channel
	}
	if channel != s.Channel {
		return sessionStep{}, violation("the guest sent a %s message on the %s after speaking on the %s", m.Type, channel, s.Channel)
	}
	return s.accept(m, size)
}

// accept takes one decoded message of size bytes. An error means the guest
// broke the protocol (it matches errProtocol); the VM is to be stopped.
func (s *session) accept(m protocol.Message, size int) (sessionStep, error) {
	var st sessionStep
	if err := s.admit(m, size); err != nil {
		return st, err
	}
	var err error
	switch m.Type {
	case protocol.TypeReady:
		if s.Ready != nil {
			return st, violation("the guest sent ready twice")
		}
		r := sanitizeReady(*m.Ready)
		s.Ready = &r
		st.SendPlan = true
	case protocol.TypePrepared:
		st.Prepared, err = s.prepared(*m.Prepared)
	case protocol.TypeCheckStart:
		st.StartCheck, st.CheckTimeout, err = s.checkStart(m.CheckStart.Check)
	case protocol.TypeLog:
		// Logged, not kept: a line costs nothing once it is written.
		st.Log = &protocol.Log{Level: text.SanitizeLine(text.Truncate(m.Log.Level, 16)), Text: text.Sanitize(text.Truncate(m.Log.Text, maxMessage))}
	case protocol.TypeResult:
		st.CheckReported, err = s.result(*m.Result)
	case protocol.TypeArtifact:
		err = s.artifact(*m.Artifact)
	case protocol.TypeOutput:
		// A program's output, saved as it is (it is the user's program's,
		// to be shown as such) in files under the result's directory.
		o := m.Output
		if err := s.owned(o.Check, "output"); err != nil {
			return st, err
		}
		if err := s.outs.save(o, func(string) bool { return true }); err != nil {
			return st, violation("%v", err)
		}
	case protocol.TypeDone:
		if m.Done.Results != len(s.Results) {
			return st, violation("the guest's done counts %d results, %d arrived", m.Done.Results, len(s.Results))
		}
		s.Done, s.running = true, ""
		st.SendBye = true
	default:
		// plan and bye go host → guest only.
		return st, violation("the guest sent a %s message", m.Type)
	}
	if err != nil {
		return sessionStep{}, err
	}
	return st, nil
}

// admit counts message m of size bytes against the session's limits and
// refuses it when over one, or out of order: anything after done, anything
// but ready before it.
func (s *session) admit(m protocol.Message, size int) error {
	if m.Type == protocol.TypeOutput {
		s.outputMessages++
	} else {
		s.messages++
		s.bytes += int64(size)
	}
	if s.messages > s.limits.Messages {
		return violation("the guest sent more than %d messages", s.limits.Messages)
	}
	if s.outputMessages > s.limits.OutputMessages {
		return violation("the guest sent more than %d output messages", s.limits.OutputMessages)
	}
	if s.bytes > s.limits.Bytes {
		return violation("the guest sent more than %d MiB", s.limits.Bytes>>20)
	}
	if s.Done {
		if m.Type == protocol.TypeDone {
			return violation("the guest sent done twice")
		}
		return violation("the guest sent a %s message after done", m.Type)
	}
	if s.Ready == nil && m.Type != protocol.TypeReady {
		return violation("the guest sent a %s message before ready", m.Type)
	}
	return nil
}

// prepared takes the guest's word that it took the host's state: once,
// for a plan that carried it, about the boot the host said.
func (s *session) prepared(p protocol.Prepared) (*protocol.Prepared, error) {
	switch {
	case s.wantBoot == "":
		return nil, violation("the guest sent prepared for a plan without host state")
	case s.Prepared != nil:
		return nil, violation("the guest sent prepared twice")
	case p.Boot != s.wantBoot:
		return nil, violation("the guest says its boot was %s, the host said %s", p.Boot, s.wantBoot)
	}
	s.Prepared = &p
	return &p, nil
}

// checkStart takes the start of a planned check, once, after prepared when
// the plan carried host state; it returns the check's timeout.
func (s *session) checkStart(name string) (string, time.Duration, error) {
	to, planned := s.timeout[name]
	switch {
	case s.wantBoot != "" && s.Prepared == nil:
		return "", 0, violation("the guest started check %s before it said prepared", name)
	case !planned:
		return "", 0, violation("the guest started check %q, which is not in the plan", name)
	case s.started[name]:
		return "", 0, violation("the guest started check %s twice", name)
	}
	s.started[name], s.running = true, name
	return name, to, nil
}

// result keeps the running check's result (or one under it), sanitised,
// within the limits; true when it is the running check's own.
func (s *session) result(r protocol.Result) (bool, error) {
	if err := s.owned(r.Check, "result"); err != nil {
		return false, err
	}
	if s.reported[r.Check] {
		return false, violation("the guest sent two results for %s", r.Check)
	}
	if len(s.Results) >= s.limits.Results {
		return false, violation("the guest sent more than %d results", s.limits.Results)
	}
	r.Message = text.Sanitize(r.Message) + s.outs.cutNote(r.Check)
	details, err := sanitizeDetails(r.Details)
	if err != nil {
		return false, violation("result %s: %v", r.Check, err)
	}
	r.Details = details
	// Counted as kept: sanitising may have lengthened them.
	s.resultBytes += len(r.Message) + len(r.Details)
	if s.resultBytes > s.limits.ResultBytes {
		return false, violation("the guest's results exceed %d MiB", s.limits.ResultBytes>>20)
	}
	s.reported[r.Check] = true
	s.Results = append(s.Results, r)
	return r.Check == s.running, nil
}

// artifact saves an artifact of the running check, sanitised, under its
// directory.
func (s *session) artifact(a protocol.Artifact) error {
	if err := s.owned(a.Check, "artifact"); err != nil {
		return err
	}
	if top, _, _ := strings.Cut(a.Name, "/"); top != s.running {
		return violation("artifact %q of check %s is not under %s/", a.Name, a.Check, s.running)
	}
	a.Data = text.Sanitize(a.Data)
	if err := s.arts.save(&a); err != nil {
		if errors.Is(err, errProtocol) {
			return err
		}
		return fmt.Errorf("save artifact %s: %w", a.Name, err)
	}
	return nil
}

// owned checks that a result or artifact belongs to the running check: its
// own name or a name under it ("verifier/probes/loop" while running
// "verifier"). The decoder has checked the characters.
func (s *session) owned(check, what string) error {
	if !protocol.ValidCheckName(check) {
		return violation("%s with invalid check name %q", what, text.Truncate(check, 64))
	}
	top, _, _ := strings.Cut(check, "/")
	if _, planned := s.timeout[top]; !planned {
		return violation("%s for check %q, which is not in the plan", what, check)
	}
	if top != s.running {
		return violation("%s for check %s while the guest runs %q", what, check, s.running)
	}
	return nil
}

// sanitizeDetails returns details with every string (keys too) sanitised.
// Details are JSON (the decoder checked); most need nothing and are returned
// as they are. Others are decoded and encoded again, numbers kept exact.
func sanitizeDetails(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || detailsClean(raw) {
		return raw, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sanitizeValue(v)); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// detailsClean reports whether raw JSON can hold no character Sanitize
// would change: none in its text, and no escape but \" \\ and \/.
func detailsClean(raw []byte) bool {
	s := string(raw)
	if text.Sanitize(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) || !strings.ContainsRune(`"\/`, rune(s[i+1])) {
			return false
		}
		i++
	}
	return !strings.ContainsAny(s, "\n\t")
}

func sanitizeValue(v any) any {
	switch v := v.(type) {
	case string:
		return text.Sanitize(v)
	case []any:
		for i := range v {
			v[i] = sanitizeValue(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[text.SanitizeLine(k)] = sanitizeValue(e)
		}
		return out
	}
	return v
}
