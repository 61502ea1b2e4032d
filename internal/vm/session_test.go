package vm

import (
	"encoding/json"
	"errors"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// fakeGuest builds the messages a guest agent sends, well behaved or not.
type fakeGuest struct{ msgs []protocol.Message }

func (g *fakeGuest) ready() *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeReady, Ready: &protocol.Ready{Agent: "dev", KernelRelease: "6.1.0-50-amd64", Machine: "x86_64"}})
}
func (g *fakeGuest) start(check string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeCheckStart, CheckStart: &protocol.CheckStart{Check: check}})
}
func (g *fakeGuest) result(check string, st protocol.Status, msg string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeResult, Result: &protocol.Result{Check: check, Status: st, Message: msg}})
}
func (g *fakeGuest) details(check, details string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeResult, Result: &protocol.Result{Check: check, Status: protocol.StatusPass, Details: json.RawMessage(details)}})
}
func (g *fakeGuest) artifact(check, name, data string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeArtifact, Artifact: &protocol.Artifact{Check: check, Name: name, Data: data}})
}
func (g *fakeGuest) log(text string) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeLog, Log: &protocol.Log{Level: "info", Text: text}})
}
func (g *fakeGuest) done(n int) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypeDone, Done: &protocol.Done{Results: n}})
}
func (g *fakeGuest) add(m protocol.Message) *fakeGuest { g.msgs = append(g.msgs, m); return g }

// goodRun is what the real agent sends for the plan of testPlan.
func goodRun() *fakeGuest {
	return new(fakeGuest).ready().log("loaded 10 modules").
		start("btf").result("btf", protocol.StatusPass, "100643 types").
		start("verifier").artifact("verifier/probes/loop", "verifier/probes/loop.log", "0: r0 = 0\n").
		result("verifier/probes/loop", protocol.StatusPass, "loaded").
		result("verifier/probes/ringbuf", protocol.StatusFail, "rejected")
}

var testPlan = protocol.Plan{Checks: []protocol.CheckSpec{
	{Name: "btf", Timeout: protocol.Duration(time.Minute)},
	{Name: "verifier", Timeout: protocol.Duration(2 * time.Minute)},
}}

// play feeds the guest's messages to a session, as Run does, and returns
// the first refusal.
func play(t *testing.T, s *session, g *fakeGuest) error {
	t.Helper()
	for i, m := range g.msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.accept(m, len(b)+1); err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("message %d: error %v does not match errProtocol", i, err)
			}
			return err
		}
	}
	return nil
}

func TestSessionGoodRun(t *testing.T) {
	dir := t.TempDir()
	s := newSession(testPlan, dir, defaultSessionLimits)
	g := goodRun()
	var steps []sessionStep
	for _, m := range g.done(3).msgs {
		st, err := s.accept(m, 100)
		if err != nil {
			t.Fatalf("accept %s: %v", m.Type, err)
		}
		steps = append(steps, st)
	}
	if !s.Done || len(s.Results) != 3 || s.Running() != "" {
		t.Errorf("done=%v results=%d running=%q ", s.Done, len(s.Results), s.Running())
	}
	if !steps[0].SendPlan || steps[2].StartCheck != "btf" || steps[2].CheckTimeout != time.Minute ||
		!steps[3].CheckReported || steps[4].StartCheck != "verifier" || steps[6].CheckReported || !steps[len(steps)-1].SendBye {
		t.Errorf("steps: %+v", steps)
	}
	if got := s.Artifacts()["verifier/probes/loop"]; len(got) != 1 || got[0] != "verifier/probes/loop.log" {
		t.Errorf("artifacts: %v", s.Artifacts())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "verifier/probes/loop.log")); err != nil || string(b) != "0: r0 = 0\n" {
		t.Errorf("artifact file: %q, %v", b, err)
	}
}

// Each way a guest can break the conversation is refused with a message
// that says what it did.
func TestSessionRefuses(t *testing.T) {
	ready := func() *fakeGuest { return new(fakeGuest).ready() }
	tests := []struct {
		name  string
		guest *fakeGuest
		want  string
	}{
		{"result after done", goodRun().done(3).result("btf", protocol.StatusPass, ""), "result message after done"},
		{"duplicate done", goodRun().done(3).done(3), "done twice"},
		{"done count too high", goodRun().done(5), "done counts 5 results, 3 arrived"},
		{"done count too low", goodRun().done(1), "done counts 1 results, 3 arrived"},
		{"log after done", goodRun().done(3).log("late"), "log message after done"},
		{"message before ready", new(fakeGuest).start("btf"), "check-start message before ready"},
		{"ready twice", ready().ready(), "ready twice"},
		{"host message from the guest", ready().add(protocol.Message{Type: protocol.TypeBye}), "sent a bye message"},
		{"unplanned check", ready().start("exec"), `check "exec", which is not in the plan`},
		{"check started twice", ready().start("btf").start("btf"), "started check btf twice"},
		{"result without check-start", ready().result("btf", protocol.StatusPass, ""), `while the guest runs ""`},
		{"result for another check", ready().start("btf").result("verifier/x/y", protocol.StatusPass, ""), "while the guest runs \"btf\""},
		{"result for an unplanned check", ready().start("btf").result("exec/x", protocol.StatusPass, ""), "not in the plan"},
		{"duplicate result", ready().start("btf").result("btf", protocol.StatusPass, "").result("btf", protocol.StatusFail, ""), "two results for btf"},
		{"check name with a newline", ready().start("btf").result("btf/x\n6.1 x86_64 btf pass", protocol.StatusPass, ""), "invalid check name"},
		{"check name with an escape", ready().start("btf").result("btf/\x1b[31mred", protocol.StatusPass, ""), "invalid check name"},
		{"artifact over qemu.log", ready().start("btf").artifact("btf", "qemu.log/x", "x"), `artifact "qemu.log/x" of check btf is not under btf/`},
		{"artifact outside its check", ready().start("btf").artifact("btf", "verifier/x.log", "x"), "not under btf/"},
		{"artifact escaping", ready().start("btf").artifact("btf", "btf/../../x", "x"), "invalid artifact name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(testPlan, t.TempDir(), defaultSessionLimits)
			err := play(t, s, tt.guest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A check named like a host file cannot have artifacts over the host's
// files either.
func TestArtifactSaverReservesHostNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, qemu.FileQEMULog), []byte("qemu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &artifactSaver{dir: dir, maxCount: 10, maxBytes: 1 << 20}
	for _, name := range []string{"qemu.log/x", "console.log/x", "qemu.cmdline/x", "console.attempt1.log/x"} {
		if err := a.save(&protocol.Artifact{Check: "x", Name: name, Data: "x"}); !errors.Is(err, errProtocol) {
			t.Errorf("save %s: %v, want a protocol error", name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, qemu.FileQEMULog)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("qemu.log is no longer a regular file: %v", err)
	}
}

// Past any per-VM bound the VM fails, and what the session holds stays
// under the bound.
func TestSessionLimits(t *testing.T) {
	limits := sessionLimits{Messages: 50, Bytes: 1 << 20, Results: 10, ResultBytes: 4 << 10, Artifacts: 2, ArtifactBytes: 100}
	big := strings.Repeat("x", 1000)
	flood := func(n int, add func(g *fakeGuest, i int)) *fakeGuest {
		g := new(fakeGuest).ready().start("btf")
		for i := 0; i < n; i++ {
			add(g, i)
		}
		return g
	}
	name := func(i int) string {
		return "btf/r" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	tests := []struct {
		name  string
		guest *fakeGuest
		want  string
	}{
		{"messages", flood(100, func(g *fakeGuest, i int) { g.log("hello") }), "more than 50 messages"},
		{"results", flood(20, func(g *fakeGuest, i int) { g.result(name(i), protocol.StatusPass, "") }), "more than 10 results"},
		{"result bytes", flood(8, func(g *fakeGuest, i int) { g.result(name(i), protocol.StatusPass, big) }), "results exceed"},
		{"artifacts", flood(3, func(g *fakeGuest, i int) { g.artifact("btf", name(i)+"/a", "x") }), "more than 2 artifacts"},
		{"artifact bytes", flood(1, func(g *fakeGuest, i int) { g.artifact("btf", "btf/a", big) }), "artifacts exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(testPlan, t.TempDir(), limits)
			err := play(t, s, tt.guest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			held := 0
			for _, r := range s.Results {
				held += len(r.Message) + len(r.Details)
			}
			if held > limits.ResultBytes || len(s.Results) > limits.Results {
				t.Errorf("session holds %d bytes in %d results", held, len(s.Results))
			}
		})
	}
	t.Run("bytes", func(t *testing.T) {
		s := newSession(testPlan, t.TempDir(), limits)
		m := protocol.Message{Type: protocol.TypeReady, Ready: &protocol.Ready{}}
		if _, err := s.accept(m, 2<<20); err == nil || !strings.Contains(err.Error(), "more than 1 MiB") {
			t.Errorf("err = %v", err)
		}
	})
}

// Every guest string leaves the session sanitised: nothing a terminal acts
// on, in messages, details (keys too), logs, artifacts and the ready fields.
func TestSessionSanitises(t *testing.T) {
	dir := t.TempDir()
	s := newSession(testPlan, dir, defaultSessionLimits)
	evil := "red \x1b[31mALERT\x1b]0;pwned\x07 back\bspace\rover \u009b2J \u202eexe"
	g := new(fakeGuest).add(protocol.Message{Type: protocol.TypeReady, Ready: &protocol.Ready{Agent: evil, KernelRelease: "6.1\x1b[2J", Machine: "x86_64"}}).
		log(evil).start("btf").artifact("btf", "btf/log.txt", evil).
		details("btf", `{"name":"`+jsonEscape(evil)+`","`+jsonEscape("key\n"+evil)+`":[1,"\u001b[0m",12345678901234567890]}`).done(1)
	var logged *protocol.Log
	for _, m := range g.msgs {
		st, err := s.accept(m, 100)
		if err != nil {
			t.Fatalf("accept %s: %v", m.Type, err)
		}
		if st.Log != nil {
			logged = st.Log
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "btf/log.txt"))
	var details any
	if err := json.Unmarshal(s.Results[0].Details, &details); err != nil {
		t.Fatalf("details no longer JSON: %v: %s", err, s.Results[0].Details)
	}
	if !strings.Contains(string(s.Results[0].Details), "12345678901234567890") {
		t.Errorf("a big number lost precision: %s", s.Results[0].Details)
	}
	decoded, _ := json.Marshal(details)
	for what, got := range map[string]string{
		"ready agent": s.Ready.Agent, "ready release": s.Ready.KernelRelease, "log": logged.Text,
		"artifact": string(b), "details": string(decoded),
	} {
		var round string
		// Details are JSON: look at the strings they decode to.
		if what == "details" {
			round = strings.Join(collectStrings(details), " ")
		} else {
			round = got
		}
		if strings.ContainsAny(round, "\x1b\x07\b\r\u009b\u202e") {
			t.Errorf("%s keeps a control character: %q", what, round)
		}
		if !strings.Contains(round, `\x1b`) {
			t.Errorf("%s does not show the escape: %q", what, round)
		}
	}
	if !strings.Contains(strings.Join(collectStrings(details), "|"), `key\n`) {
		t.Errorf("a newline in a details key survives: %s", s.Results[0].Details)
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func collectStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, collectStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(out, k)
			out = append(out, collectStrings(e)...)
		}
		return out
	}
	return nil
}

func TestSanitizeDetailsKeepsCleanDetails(t *testing.T) {
	for _, in := range []string{`{"b":1,"a":"x \"q\" \\ \/"}`, `[1,2.5e10,"é"]`, ``} {
		got, err := sanitizeDetails(json.RawMessage(in))
		if err != nil || string(got) != in {
			t.Errorf("sanitizeDetails(%s) = %s, %v; want it unchanged", in, got, err)
		}
	}
}

// FuzzSession: whatever a guest writes on its channel, the decoder and the
// session together never panic, refuse it with a protocol error at worst,
// and hold no more than the session's limits.
func FuzzSession(f *testing.F) {
	var seed []byte
	for _, m := range goodRun().done(3).msgs {
		b, _ := json.Marshal(protocol.Message{V: protocol.Version, Type: m.Type, Ready: m.Ready, CheckStart: m.CheckStart,
			Log: m.Log, Result: m.Result, Artifact: m.Artifact, Done: m.Done})
		seed = append(append(seed, b...), '\n')
	}
	f.Add(seed)
	f.Add([]byte(`{"v":1,"type":"ready","ready":{}}` + "\n" + `{"v":1,"type":"done","done":{"results":0}}` + "\n"))
	limits := sessionLimits{Messages: 200, Bytes: 1 << 20, Results: 20, ResultBytes: 8 << 10, Artifacts: 5, ArtifactBytes: 8 << 10}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			t.Skip("input over the fuzz bound")
		}
		s := newSession(testPlan, t.TempDir(), limits)
		dec := protocol.NewDecoder(strings.NewReader(string(b)))
		for {
			m, err := dec.Next()
			if err != nil {
				break
			}
			if _, err := s.accept(m, 1); err != nil {
				if !errors.Is(err, errProtocol) {
					t.Fatalf("refused without a protocol error: %v", err)
				}
				break
			}
		}
		held := 0
		for _, r := range s.Results {
			held += len(r.Message) + len(r.Details)
			if !protocol.ValidCheckName(r.Check) {
				t.Fatalf("kept a result named %q", r.Check)
			}
		}
		if held > limits.ResultBytes || len(s.Results) > limits.Results ||
			s.arts.count > limits.Artifacts || s.arts.bytes > limits.ArtifactBytes {
			t.Fatalf("session holds %d bytes, %d results, %d artifacts", held, len(s.Results), s.arts.count)
		}
	})
}

// The guest speaks on the channel of its first message, port or console,
// and nothing arrives on the other: a frame on the console of a guest that
// speaks on the port is refused, and the reverse.
func TestSessionOneChannel(t *testing.T) {
	for _, tc := range []struct{ first, second string }{
		{protocol.ChannelVirtio, protocol.ChannelConsole},
		{protocol.ChannelConsole, protocol.ChannelVirtio},
	} {
		s := newSession(testPlan, t.TempDir(), defaultSessionLimits)
		g := goodRun().done(3)
		for _, m := range g.msgs[:3] {
			if _, err := s.acceptOn(tc.first, m, 100); err != nil {
				t.Fatalf("%s: %v", tc.first, err)
			}
		}
		if s.Channel != tc.first {
			t.Errorf("channel %q, want %q", s.Channel, tc.first)
		}
		_, err := s.acceptOn(tc.second, g.msgs[3], 100)
		if want := "result message on the " + tc.second + " after speaking on the " + tc.first; err == nil || !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), want) {
			t.Errorf("on the %s after the %s: %v, want a protocol error %q", tc.second, tc.first, err, want)
		}
	}
}

func (g *fakeGuest) prepared(boot protocol.BootKind) *fakeGuest {
	return g.add(protocol.Message{Type: protocol.TypePrepared, Prepared: &protocol.Prepared{Boot: boot, EntropyBytes: 64}})
}

// A restored VM's agent says nothing before the plan: the session starts
// from the snapshot's ready, and with host state the guest must say
// prepared, with the host's boot kind, before its first check.
func TestSessionPrepared(t *testing.T) {
	hostPlan := func(boot protocol.BootKind) protocol.Plan {
		p := testPlan
		p.Host = &protocol.HostState{Boot: boot}
		return p
	}
	s := newSession(testPlan, t.TempDir(), defaultSessionLimits)
	s.restored(protocol.Ready{Agent: "dev\x1b[2J", KernelRelease: "6.1.0", Notes: []protocol.Log{{Level: "error", Text: "a\x07b"}}}, protocol.ChannelVirtio)
	s.sent(hostPlan(protocol.BootSnapshot))
	g := new(fakeGuest).prepared(protocol.BootSnapshot).start("btf").result("btf", protocol.StatusPass, "").
		start("verifier").result("verifier", protocol.StatusPass, "").done(2)
	if err := play(t, s, g); err != nil {
		t.Fatal(err)
	}
	if !s.Done || s.Prepared == nil || s.Prepared.Boot != protocol.BootSnapshot {
		t.Errorf("done=%v prepared=%+v", s.Done, s.Prepared)
	}
	if strings.ContainsAny(s.Ready.Agent+s.Ready.Notes[0].Text, "\x1b\x07") {
		t.Errorf("the snapshot's ready is not sanitised: %+v", s.Ready)
	}

	tests := []struct {
		name  string
		boot  protocol.BootKind // the plan's, "" for none
		guest *fakeGuest
		want  string
	}{
		{"check before prepared", protocol.BootCold, new(fakeGuest).ready().start("btf"), "started check btf before it said prepared"},
		{"boot kind not the host's", protocol.BootCold, new(fakeGuest).ready().prepared(protocol.BootSnapshot), "says its boot was snapshot, the host said cold"},
		{"prepared twice", protocol.BootCold, new(fakeGuest).ready().prepared(protocol.BootCold).prepared(protocol.BootCold), "prepared twice"},
		{"prepared unasked", "", new(fakeGuest).ready().prepared(protocol.BootCold), "prepared for a plan without host state"},
		{"prepared before ready", protocol.BootCold, new(fakeGuest).prepared(protocol.BootCold), "prepared message before ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(testPlan, t.TempDir(), defaultSessionLimits)
			if tt.boot != "" {
				s.sent(hostPlan(tt.boot))
			}
			if err := play(t, s, tt.guest); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A restored session refuses a second ready.
	s = newSession(testPlan, t.TempDir(), defaultSessionLimits)
	s.restored(protocol.Ready{}, protocol.ChannelVirtio)
	if err := play(t, s, new(fakeGuest).ready()); err == nil || !strings.Contains(err.Error(), "ready twice") {
		t.Errorf("ready after a restore: %v", err)
	}
}
