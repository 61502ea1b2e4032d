package matrix

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/program"
	"github.com/vmrunner/vmrunner/protocol"
)

func init() { registerCheck[testParams](protocol.TestCheck.Def()) }

// testParams is the "test" check as written in matrix.yaml:
//
//	test:
//	  binary: ./bin/agent.test   # relative to the matrix file; {arch} for one per arch
//	  args: ["-test.run", "TestAttach"]
//	  format: go                 # one result per Go test; or exit (default): one from the exit status
//	  dir: ./agent               # the working directory, packed; default none (the program runs in /)
//	  env: [KEY=VALUE]
//
// The program runs on the targets of its own arch (read from its ELF
// header) and is skipped on the others. It is sent to the guest as
// protocol.TestParams, per arch (Check.ByArch), with the program, its
// libraries and the directory packed per run (Shares).
type testParams struct {
	Binary string   `yaml:"binary"`
	Args   []string `yaml:"args"`
	Env    []string `yaml:"env"`
	Dir    string   `yaml:"dir"`
	Format string   `yaml:"format"`

	guest *protocol.TestParams // one arch's, for the host's validation
}

// MarshalJSON sends what the guest reads, protocol.TestParams.
func (t testParams) MarshalJSON() ([]byte, error) {
	if t.guest != nil {
		return json.Marshal(t.guest)
	}
	return json.Marshal(protocol.TestParams{Args: t.Args, Env: t.Env, Format: t.Format})
}

// derivedKeys implements derivedParams: the guest needs the result's name,
// the program's guest path and the binds, which matrix.yaml does not write.
func (t *testParams) derivedKeys() []string { return []string{"name", "binary", "dir", "binds"} }

// resolve finds the program (one per arch with {arch}), reads its arch and
// libraries, and packs it with the directory.
func (t *testParams) resolve(env *paramsEnv, n *yaml.Node) {
	node := yamlstrict.Value(n, "binary")
	if t.Binary == "" || node == nil {
		env.errorf(n, "missing binary: expected the path of the program to run, relative to the matrix file ({arch} for one per arch)")
		return
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(env.dir, p)
	}
	dir := ""
	if t.Dir != "" {
		dir = abs(t.Dir)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			env.errorf(yamlstrict.Value(n, "dir"), "dir: %s: no such directory (relative to %s)", dir, orDot(env.dir))
			return
		}
	}
	full := abs(t.Binary)
	type candidate struct {
		arch kernels.Arch // "": read from the program
		path string
	}
	candidates := []candidate{{"", full}}
	if strings.Contains(full, "{arch}") {
		candidates = nil
		for _, a := range kernels.Arches {
			candidates = append(candidates, candidate{a, strings.ReplaceAll(full, "{arch}", string(a))})
		}
	}
	name := TestName(filepath.Base(full))
	env.byArch = map[kernels.Arch]ArchCheck{}
	for _, c := range candidates {
		p, err := program.Inspect(c.path, program.Options{Arch: c.arch})
		if err != nil {
			env.errorf(node, "binary: %v", err)
			return
		}
		guest, ac, err := testCheck(p, name, t.Args, t.Env, t.Format, dir, DefaultMaxDirBytes)
		if err != nil {
			env.errorf(n, "%v", err)
			return
		}
		env.byArch[p.Arch] = ac
		if t.guest == nil {
			t.guest = guest
		}
	}
	env.skipAs = "test/" + name
	env.otherArch = fmt.Sprintf("%s is built for %s", filepath.Base(full), strings.Join(archesOf(env.byArch), ", "))
}

// testCheck packs program p (and dir, when set) and returns the guest
// parameters that run it with args and env, in dir.
func testCheck(p *program.Program, name string, args, env []string, format, dir string, maxDir int64) (*protocol.TestParams, ArchCheck, error) {
	sh := &Shares{}
	if err := sh.AddProgram(p); err != nil {
		return nil, ArchCheck{}, err
	}
	guestDirPath := ""
	if dir != "" {
		guestDirPath = GuestDir(dir)
		if err := sh.AddDir(dir, guestDirPath, maxDir); err != nil {
			return nil, ArchCheck{}, err
		}
	}
	params := &protocol.TestParams{Name: name, Binary: p.Path, Args: args, Env: env, Dir: guestDirPath,
		Format: cmp.Or(format, protocol.FormatExit), Binds: sh.Binds}
	js, err := json.Marshal(params)
	if err != nil {
		return nil, ArchCheck{}, fmt.Errorf("encode test params: %w", err)
	}
	return params, ArchCheck{Params: js, Shares: sh}, nil
}

var (
	unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	doubledSeps     = regexp.MustCompile(`[-_.]{2,}`)
)

// TestName is the result name of a program: its file name with {arch}
// removed and anything but [A-Za-z0-9._-] replaced, at most 64 bytes.
func TestName(base string) string {
	s := strings.ReplaceAll(base, "{arch}", "")
	s = unsafeNameChars.ReplaceAllString(s, "_")
	s = doubledSeps.ReplaceAllStringFunc(s, func(m string) string {
		if strings.Contains(m, ".") {
			return "."
		}
		return m[:1]
	})
	s = strings.Trim(s, "-_")
	if len(s) > 64 {
		s = s[:64]
	}
	if !protocol.ValidTestName(s) {
		return "program"
	}
	return s
}
