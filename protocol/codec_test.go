package protocol

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	msgs := []Message{
		{Type: TypeReady, Ready: &Ready{Agent: "dev", KernelRelease: "6.1.0-50-amd64", Machine: "x86_64", UptimeMS: 1200}},
		{Type: TypePlan, Plan: &Plan{Checks: []CheckSpec{{Name: "btf", Params: []byte(`{"require":["sk_buff"]}`), Timeout: Duration(30 * time.Second)}}}},
		{Type: TypeCheckStart, CheckStart: &CheckStart{Check: "btf"}},
		{Type: TypeLog, Log: &Log{Level: "info", Text: "hello"}},
		{Type: TypeOutput, Output: &Output{Check: "test/x", Stream: Stderr, Data: []byte("\x00\xff bytes\n")}},
		{Type: TypeResult, Result: &Result{Check: "btf", Status: StatusPass, DurationMS: 12}},
		{Type: TypeDone, Done: &Done{Results: 1}},
		{Type: TypeBye},
	}
	for _, m := range msgs {
		if err := enc.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(&buf)
	for _, want := range msgs {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got.Type != want.Type || got.V != Version {
			t.Errorf("got %s v%d, want %s", got.Type, got.V, want.Type)
		}
		if want.Output != nil && (got.Output == nil || !bytes.Equal(got.Output.Data, want.Output.Data) || got.Output.Stream != want.Output.Stream) {
			t.Errorf("output %+v came back as %+v", want.Output, got.Output)
		}
	}
	if got, _ := msgs[1].Plan.Checks[0].Timeout.MarshalJSON(); string(got) != `"30s"` {
		t.Errorf("duration encodes as %s", got)
	}
	if _, err := dec.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after last message: %v, want EOF", err)
	}
}

func TestDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", "hello world\n", ErrMalformed},
		{"wrong version", `{"v":2,"type":"done","done":{}}` + "\n", ErrBadVersion},
		{"unknown type", `{"v":1,"type":"exec","done":{}}` + "\n", ErrMalformed},
		{"payload mismatch", `{"v":1,"type":"ready","done":{}}` + "\n", ErrMalformed},
		{"two payloads", `{"v":1,"type":"done","done":{},"log":{}}` + "\n", ErrMalformed},
		{"bad status", `{"v":1,"type":"result","result":{"check":"btf","status":"great"}}` + "\n", ErrMalformed},
		{"result without check", `{"v":1,"type":"result","result":{"status":"pass"}}` + "\n", ErrMalformed},
		{"bad reason", `{"v":1,"type":"result","result":{"check":"btf","status":"fail","reason":"<b>why</b>"}}` + "\n", ErrMalformed},
		{"reason detail too long", `{"v":1,"type":"result","result":{"check":"btf","status":"fail","reason":"MISSING_BTF","reason_detail":"` + strings.Repeat("a", MaxReasonDetail+1) + `"}}` + "\n", ErrMalformed},
		{"artifact escaping", `{"v":1,"type":"artifact","artifact":{"check":"v","name":"../../etc/passwd","data":""}}` + "\n", ErrMalformed},
		{"artifact absolute", `{"v":1,"type":"artifact","artifact":{"check":"v","name":"/etc/passwd","data":""}}` + "\n", ErrMalformed},
		{"artifact at top level", `{"v":1,"type":"artifact","artifact":{"check":"v","name":"console.log","data":""}}` + "\n", ErrMalformed},
		{"output without check", `{"v":1,"type":"output","output":{"stream":"stdout","data":"aGk="}}` + "\n", ErrMalformed},
		{"output on another stream", `{"v":1,"type":"output","output":{"check":"test/x","stream":"stdin","data":"aGk="}}` + "\n", ErrMalformed},
		{"empty output", `{"v":1,"type":"output","output":{"check":"test/x","stream":"stdout","data":""}}` + "\n", ErrMalformed},
		{"output not base64", `{"v":1,"type":"output","output":{"check":"test/x","stream":"stdout","data":"!!"}}` + "\n", ErrMalformed},
		{"output chunk too large", `{"v":1,"type":"output","output":{"check":"test/x","stream":"stdout","data":"` + strings.Repeat("QUFB", MaxOutputChunk/3+1) + `"}}` + "\n", ErrMalformed},
		{"unknown field", `{"v":1,"type":"done","done":{},"cmd":"rm -rf /"}` + "\n", ErrMalformed},
		{"truncated", `{"v":1,"type":"done"`, ErrMalformed},
		{"too large", `{"v":1,"type":"log","log":{"text":"` + strings.Repeat("a", MaxMessageSize) + `"}}` + "\n", ErrTooLarge},
		{"too large without newline", strings.Repeat("a", 3*MaxMessageSize), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(strings.NewReader(tt.in)).Next()
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecoderSkipsBlankLines(t *testing.T) {
	d := NewDecoder(strings.NewReader("\n\r\n" + `{"v":1,"type":"bye"}` + "\n"))
	if m, err := d.Next(); err != nil || m.Type != TypeBye {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestEncoderRefusesOversize(t *testing.T) {
	err := NewEncoder(io.Discard).Send(Message{Type: TypeLog, Log: &Log{Text: strings.Repeat("a", MaxMessageSize)}})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

// FuzzParse: whatever the guest sends, Parse never panics and anything it
// accepts is a valid message.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"result","result":{"check":"btf","status":"pass"}}`))
	f.Add([]byte(`{"v":1,"type":"ready","ready":{"agent":"x"}}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.V != Version {
			t.Fatalf("accepted version %d", m.V)
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted invalid message: %v", err)
		}
	})
}

func TestValidArtifactName(t *testing.T) {
	for name, want := range map[string]bool{
		"verifier/probes/loop.log": true, "verifier/a_b-c.1/x.log": true,
		"console.log": false, "../x/y": false, "a/../b": false, "a//b": false, "/a/b": false,
		"a/b/": false, "a/./b": false, "a/b c": false, "a/b\x00": false, "a/b/c/d/e/f/g": false,
		strings.Repeat("a/", 200) + "b": false,
	} {
		if got := ValidArtifactName(name); got != want {
			t.Errorf("ValidArtifactName(%q) = %v, want %v", name, got, want)
		}
	}
}

// maxFuzzInput bounds the inputs the fuzzers try: a few messages' worth.
const maxFuzzInput = 4 * MaxMessageSize

// FuzzDecoder: whatever bytes a guest writes, the decoder returns valid
// messages then an error, and allocates in proportion to its input, never
// more than a bounded amount per message.
func FuzzDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"type":"ready","ready":{"agent":"x"}}` + "\n" + `{"v":1,"type":"done","done":{"results":0}}` + "\n",
		`{"v":1,"type":"result","result":{"check":"btf/x","status":"pass","details":{"a":[1,2]}}}` + "\n",
		`{"v":1,"type":"artifact","artifact":{"check":"v","name":"v/x.log","data":"\u001b[31m"}}` + "\n",
		"\n\n\r\n{}\n",
		strings.Repeat("[", 1000),
		strings.Repeat("A", 70<<10),
	} {
		if len(seed) > maxFuzzInput {
			f.Fatalf("seed of %d bytes is over the fuzz bound", len(seed))
		}
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzInput {
			t.Skip("input over the fuzz bound")
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		dec := NewDecoder(bytes.NewReader(b))
		for {
			m, err := dec.Next()
			if err != nil {
				break
			}
			if m.V != Version {
				t.Fatalf("accepted version %d", m.V)
			}
			if err := m.validate(); err != nil {
				t.Fatalf("accepted invalid message: %v", err)
			}
		}
		runtime.ReadMemStats(&after)
		// The reader's buffer, one message's worth of line, and what JSON
		// decoding makes of the input.
		if got, bound := after.TotalAlloc-before.TotalAlloc, uint64(8*MaxMessageSize+64*len(b)); got > bound {
			t.Fatalf("decoding %d bytes allocated %d bytes (bound %d)", len(b), got, bound)
		}
	})
}

// A guest that writes without end and never a newline costs the decoder
// about one message, not what it wrote.
func TestDecoderMemoryBound(t *testing.T) {
	endless := io.LimitReader(repeatReader('A'), 256<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewDecoder(endless).Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*MaxMessageSize {
		t.Errorf("reading 256 MiB without a newline allocated %d bytes", got)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
