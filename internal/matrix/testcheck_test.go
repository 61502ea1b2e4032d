package matrix

import (
	"encoding/json"
	"github.com/vmrunner/vmrunner/internal/testsupport/testfs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

const testMatrixKernels = `kernels:
  - name: "6.1"
    source: {debian: {suite: bookworm}}
`

func TestTestCheckParses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "agent.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	testfs.WriteTree(t, dir, map[string]string{"agent/testdata/x": "x", "bin/agent.test": string(data)})
	file := filepath.Join(dir, "m.yaml")
	m, err := ParseMatrix(file, []byte(testMatrixKernels+`checks:
  - test: {binary: ./bin/agent.test, args: ["-test.run", "TestAttach"], format: go, dir: ./agent, timeout: 3m}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Checks[0]
	if c.Name != "test" || c.Timeout.Minutes() != 3 || c.SkipAs != "test/agent.test" || !strings.Contains(c.OtherArch, "built for "+string(kernels.Host())) {
		t.Fatalf("check %+v", c)
	}
	ac, ok := c.ByArch[kernels.Host()]
	if !ok || len(c.ByArch) != 1 {
		t.Fatalf("ByArch %v", c.ByArch)
	}
	p, err := protocol.TestCheck.Params(ac.Params)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "agent.test" || p.Binary != bin || p.Dir != filepath.Join(dir, "agent") || p.Format != "go" || strings.Join(p.Args, " ") != "-test.run TestAttach" {
		t.Errorf("guest params %+v", p)
	}
	// The plan of the other arch skips it; the host's runs it.
	other := kernels.ARM64
	if kernels.Host() == other {
		other = kernels.X86_64
	}
	if plan, skipped := m.Plan(other); len(plan.Checks) != 0 || len(skipped) != 1 {
		t.Errorf("plan for %s: %+v, skipped %d", other, plan, len(skipped))
	}
	plan, _ := m.Plan(kernels.Host())
	if len(plan.Checks) != 1 || string(plan.Checks[0].Params) != string(ac.Params) {
		t.Errorf("plan for the host: %+v", plan)
	}
	if !m.HasShares() || len(m.SharedFiles(kernels.Host())) < 3 {
		t.Errorf("shares: %v", m.SharedFiles(kernels.Host()))
	}
	var guest map[string]any
	_ = json.Unmarshal(c.Params, &guest)
	if guest["binary"] != bin {
		t.Errorf("params sent for validation: %s", c.Params)
	}
}

func TestTestCheckErrors(t *testing.T) {
	dir := t.TempDir()
	testfs.WriteTree(t, dir, map[string]string{"notes.txt": "hello"})
	self, _ := os.Executable()
	for _, tc := range []struct{ check, want string }{
		{`test: {format: go}`, "5:11: checks[0].test: missing binary"},
		{`test: {binary: ./nope.test}`, "5:20: checks[0].test: binary: program " + filepath.Join(dir, "nope.test") + ": no such file"},
		{`test: {binary: ./notes.txt}`, "not an ELF executable"},
		{`test: {binary: ` + self + `, format: tap}`, `format: "tap": expected one of go, exit`},
		{`test: {binary: ` + self + `, dir: ./missing}`, "dir: " + filepath.Join(dir, "missing") + ": no such directory"},
		{`test: {binary: ` + self + `, env: [NOVALUE]}`, `env: "NOVALUE": expected KEY=VALUE`},
		{`test: {binary: ` + self + `, name: x}`, `unknown key "name"`},
	} {
		_, err := ParseMatrix(filepath.Join(dir, "m.yaml"), []byte(testMatrixKernels+"checks:\n  - "+tc.check+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.check, err, tc.want)
		}
	}
}
