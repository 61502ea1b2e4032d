package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// helperEnv makes this test binary act as the program under test: see
// TestMain.
const helperEnv = "VMRUNNER_GUEST_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "argv":
		wd, _ := os.Getwd()
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"args": os.Args[1:], "wd": wd,
			"path": os.Getenv("PATH"), "home": os.Getenv("HOME"), "extra": os.Getenv("EXTRA"), "stdin": stdinIsNull()})
	case "interleave":
		for i := range 3 {
			fmt.Fprintf(os.Stdout, "out%d\n", i)
			time.Sleep(100 * time.Millisecond)
			fmt.Fprintf(os.Stderr, "err%d\n", i)
			time.Sleep(100 * time.Millisecond)
		}
		os.Exit(3)
	case "sigterm":
		fmt.Println("about to die")
		// The Go runtime dies of SIGTERM itself when nothing handles it.
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Minute)
	case "hang":
		fmt.Println("hanging")
		time.Sleep(time.Hour)
	case "flood":
		os.Stdout.Write(bytes.Repeat([]byte("x"), 300<<10))
	case "bigflood":
		// More than the pump queues: it exits as soon as the pipe has
		// taken the last byte, with the pump's queue full.
		for i := range 40 {
			os.Stdout.Write(bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
		}
		_ = os.WriteFile(os.Getenv("EXITED"), nil, 0o644)
	}
	os.Exit(0)
}

func stdinIsNull() bool {
	in, err := os.Stdin.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(in, null)
}

// collector records what a program sent, in order.
type collector struct {
	mu  sync.Mutex
	out []protocol.Output
}

func (c *collector) send(o protocol.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.Data = append([]byte(nil), o.Data...)
	c.out = append(c.out, o)
	return nil
}

func (c *collector) text(s protocol.Stream) string {
	var b strings.Builder
	for _, o := range c.out {
		if s == "" || o.Stream == s {
			b.Write(o.Data)
		}
	}
	return b.String()
}

func runHelper(t *testing.T, ctx context.Context, mode string, p protocol.TestParams) (programRun, *collector, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p.Binary = self
	p.Env = append(p.Env, helperEnv+"="+mode)
	if p.MaxOutput == 0 {
		p.MaxOutput = protocol.DefaultMaxOutput
	}
	c := &collector{}
	run, err := runProgram(ctx, p, "test/helper", c.send, 500*time.Millisecond)
	return run, c, err
}

func TestRunProgramArgvEnvDir(t *testing.T) {
	dir := t.TempDir()
	args := []string{"a b", "", "'quoted'", `"dq"`, "$HOME", "-test.run=^TestX$", "tab\there"}
	run, c, err := runHelper(t, context.Background(), "argv", protocol.TestParams{Args: args, Dir: dir, Env: []string{"EXTRA=x=y", "HOME=/override"}})
	if err != nil {
		t.Fatal(err)
	}
	if run.exitCode != 0 || run.signal != "" {
		t.Fatalf("exit %d %s, want 0", run.exitCode, run.signal)
	}
	var got struct {
		Args                  []string
		WD, Path, Home, Extra string
		Stdin                 bool
	}
	if err := json.Unmarshal([]byte(c.text(protocol.Stdout)), &got); err != nil {
		t.Fatalf("helper output %q: %v", c.text(""), err)
	}
	if fmt.Sprintf("%q", got.Args) != fmt.Sprintf("%q", args) {
		t.Errorf("argv = %q, want %q exactly", got.Args, args)
	}
	if got.WD != dir || got.Path != protocol.TestPath || got.Home != "/override" || got.Extra != "x=y" || !got.Stdin {
		t.Errorf("program saw %+v; want dir %s, PATH %s, HOME overridden, EXTRA=x=y, stdin /dev/null", got, dir, protocol.TestPath)
	}
	if run.stdout != int64(len(c.text(protocol.Stdout))) || run.stderr != 0 {
		t.Errorf("counts stdout %d stderr %d, sent %d", run.stdout, run.stderr, len(c.text(protocol.Stdout)))
	}
}

func TestRunProgramStreamsInOrder(t *testing.T) {
	run, c, err := runHelper(t, context.Background(), "interleave", protocol.TestParams{})
	if err != nil {
		t.Fatal(err)
	}
	if run.exitCode != 3 {
		t.Errorf("exit %d, want 3", run.exitCode)
	}
	var seq []string
	for _, o := range c.out {
		if o.Check != "test/helper" {
			t.Errorf("output names check %q", o.Check)
		}
		seq = append(seq, string(o.Stream)+":"+strings.TrimSpace(string(o.Data)))
	}
	want := "stdout:out0 stderr:err0 stdout:out1 stderr:err1 stdout:out2 stderr:err2"
	if strings.Join(seq, " ") != want {
		t.Errorf("messages %q, want %q", strings.Join(seq, " "), want)
	}
}

func TestRunProgramSignal(t *testing.T) {
	run, c, err := runHelper(t, context.Background(), "sigterm", protocol.TestParams{})
	if err != nil {
		t.Fatal(err)
	}
	if run.exitCode != 143 || run.signal != "SIGTERM" {
		t.Errorf("exit %d %q, want 143 SIGTERM", run.exitCode, run.signal)
	}
	if c.text(protocol.Stdout) != "about to die\n" {
		t.Errorf("stdout %q", c.text(protocol.Stdout))
	}
}

func TestRunProgramStoppedAtDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	run, c, err := runHelper(t, ctx, "hang", protocol.TestParams{})
	if err == nil || !strings.Contains(err.Error(), "did not exit in time") {
		t.Fatalf("err = %v, want the program stopped", err)
	}
	if strings.Contains(err.Error(), "task dump") {
		t.Errorf("err = %v: no task dump outside a guest", err)
	}
	if run.exitCode != -1 || c.text(protocol.Stdout) != "hanging\n" {
		t.Errorf("exit %d, output %q", run.exitCode, c.text(""))
	}
}

func TestRunProgramBoundsOutput(t *testing.T) {
	run, c, err := runHelper(t, context.Background(), "flood", protocol.TestParams{MaxOutput: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.text("")); got != 100<<10 {
		t.Errorf("sent %d bytes, want %d", got, 100<<10)
	}
	if run.stdout != 300<<10 || run.dropped != 200<<10 {
		t.Errorf("stdout %d dropped %d, want %d and %d", run.stdout, run.dropped, 300<<10, 200<<10)
	}
	for _, o := range c.out {
		if len(o.Data) > protocol.MaxOutputChunk {
			t.Errorf("chunk of %d bytes", len(o.Data))
		}
	}
}

// With no output limit every byte is sent, also when the channel is slower
// than the program: it is held back, and what it wrote before it exited
// is sent whole, however long the channel stalls.
func TestRunProgramUnboundedSlowChannel(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	exited := filepath.Join(t.TempDir(), "exited")
	stalled := false
	slow := func(o protocol.Output) error {
		// Slower than the program, and once it has exited, with its
		// last bytes in the pipe, the channel stalls for longer than
		// pipeGrace.
		time.Sleep(10 * time.Millisecond)
		if _, err := os.Stat(exited); err == nil && !stalled {
			stalled = true
			time.Sleep(pipeGrace + time.Second)
		}
		return c.send(o)
	}
	p := protocol.TestParams{Binary: self, Env: []string{helperEnv + "=bigflood", "EXITED=" + exited}, MaxOutput: protocol.NoOutputLimit}
	start := time.Now()
	run, err := runProgram(context.Background(), p, "test/helper", slow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !stalled {
		t.Fatalf("took %s: the program's output was all sent before it exited", time.Since(start))
	}
	var want bytes.Buffer
	for i := range 40 {
		want.Write(bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
	}
	if got := c.text(protocol.Stdout); got != want.String() {
		t.Errorf("received %d bytes, want the %d written, in order", len(got), want.Len())
	}
	if run.exitCode != 0 || run.stdout != 40*64<<10 || run.dropped != 0 {
		t.Errorf("exit %d, stdout %d, dropped %d", run.exitCode, run.stdout, run.dropped)
	}
}

func TestRunProgramMissing(t *testing.T) {
	c := &collector{}
	_, err := runProgram(context.Background(), protocol.TestParams{Binary: "/nonexistent/prog", MaxOutput: 10}, "test/x", c.send, 0)
	if err == nil || !strings.Contains(err.Error(), "start /nonexistent/prog") {
		t.Errorf("err = %v", err)
	}
}

func TestCheckTestReportsExitStatus(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(protocol.TestParams{Name: "helper", Binary: self, Env: []string{helperEnv + "=interleave"}})
	o, err := checkTest(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Sub) != 1 || o.Sub[0].Check != "test/helper" || o.Sub[0].Status != protocol.StatusFail || o.Sub[0].Message != "exit status 3" {
		t.Fatalf("outcome %+v, want one failed test/helper with exit status 3", o)
	}
	var d protocol.TestDetails
	if err := json.Unmarshal(o.Sub[0].Details, &d); err != nil || d.ExitCode != 3 || d.StdoutBytes != 15 || d.StderrBytes != 15 {
		t.Errorf("details %s (%v)", o.Sub[0].Details, err)
	}
	bad, _ := json.Marshal(protocol.TestParams{Name: "a/b", Binary: self})
	if _, err := checkTest(context.Background(), bad); err == nil {
		t.Errorf("a bad name was accepted")
	}
}

func TestCheckTestGoFormatFlags(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(protocol.TestParams{Name: "helper", Binary: self, Format: protocol.FormatGo,
		Args: []string{"-test.v=false"}, Env: []string{helperEnv + "=argv"}})
	var c collector
	o, err := checkTestWith(context.Background(), raw, c.send)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Args []string }
	if err := json.Unmarshal([]byte(c.text(protocol.Stdout)), &got); err != nil {
		t.Fatalf("output %q: %v", c.text(""), err)
	}
	if want := []string{"-test.v=false", "-test.v=test2json", "-test.paniconexit0"}; fmt.Sprint(got.Args) != fmt.Sprint(want) {
		t.Errorf("argv %q, want %q", got.Args, want)
	}
	if o.Sub[0].Status != protocol.StatusPass {
		t.Errorf("result %+v", o.Sub[0])
	}
}
