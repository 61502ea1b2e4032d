package matrix

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/matrix/*.err")

func TestDefaultMatrix(t *testing.T) {
	m, err := LoadMatrix("../../matrix.yaml")
	if err != nil {
		t.Fatal(err)
	}

	want := Defaults{MemoryMiB: 512, CPUs: 1, Timeout: 10 * time.Minute, CheckTimeout: 5 * time.Minute}
	if m.Defaults != want {
		t.Errorf("defaults: got %+v, want %+v", m.Defaults, want)
	}

	var got []string
	for _, tg := range m.Targets() {
		got = append(got, tg.Label()+"@"+tg.Kernel.Source.Debian.Suite)
	}
	wantTargets := []string{
		"5.10/x86_64@bullseye", "5.10/arm64@bullseye",
		"6.1/x86_64@bookworm", "6.1/arm64@bookworm",
		"6.12/x86_64@trixie", "6.12/arm64@trixie",
	}
	if !slices.Equal(got, wantTargets) {
		t.Errorf("targets: got %v, want %v", got, wantTargets)
	}

	if len(m.Checks) != 3 {
		t.Fatalf("checks: got %d, want 3 (btf, features, verifier)", len(m.Checks))
	}
	c := m.Checks[0]
	if c.Name != "btf" || c.Timeout != 5*time.Minute {
		t.Errorf("check: got %s with timeout %v", c.Name, c.Timeout)
	}
	if string(c.Params) != `{"require":["task_struct","sk_buff","sock"]}` {
		t.Errorf("btf params: got %s", c.Params)
	}
}

func TestParseMatrix(t *testing.T) {
	const kernel = `{name: k, source: {debian: {suite: bookworm}}}`
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(*testing.T, *Matrix)
	}{
		{"arch scalar", `
kernels: [{name: k, arch: arm64, source: {debian: {suite: bookworm}}}]
checks: [btf]`, func(t *testing.T, m *Matrix) {
			equal(t, "arch", m.Kernels[0].Arch, []kernels.Arch{kernels.ARM64})
		}},
		{"arch aliases and order", `
kernels: [{name: k, arch: [aarch64, amd64], source: {debian: {suite: bookworm}}}]
checks: [btf]`, func(t *testing.T, m *Matrix) {
			equal(t, "arch", m.Kernels[0].Arch, []kernels.Arch{kernels.ARM64, kernels.X86_64})
		}},
		{"arch default", `
kernels: [` + kernel + `]
checks: [btf]`, func(t *testing.T, m *Matrix) {
			equal(t, "arch", m.Kernels[0].Arch, kernels.Arches)
			m.Kernels[0].Arch[0] = "mutated"
			if kernels.Arches[0] == "mutated" {
				t.Error("default arch list aliases kernels.Arches")
			}
		}},
		{"defaults and overrides", `
defaults: {memory: 1G, cpus: 2, timeout: 90s, check_timeout: 30s}
kernels:
  - {name: a, memory: 768MiB, cpus: 4, source: {debian: {suite: sid, mirror: "http://m/debian", flavour: rt-amd64}}}
checks: [btf]`, func(t *testing.T, m *Matrix) {
			equal(t, "defaults", m.Defaults, Defaults{MemoryMiB: 1024, CPUs: 2, Timeout: 90 * time.Second, CheckTimeout: 30 * time.Second})
			k := m.Kernels[0]
			equal(t, "memory", k.MemoryMiB, 768)
			equal(t, "cpus", k.CPUs, 4)
			equal(t, "debian", *k.Source.Debian, kernels.DebianSpec{Suite: "sid", Mirror: "http://m/debian", Flavour: "rt-amd64"})
			equal(t, "check timeout", m.Checks[0].Timeout, 30*time.Second)
		}},
		{"unquoted version name keeps its text", `
kernels: [{name: 6.10, source: {debian: {suite: trixie}}}]
checks: [btf]`, func(t *testing.T, m *Matrix) {
			equal(t, "name", m.Kernels[0].Name, "6.10")
		}},
		{"bare check has no params", `
kernels: [` + kernel + `]
checks: [btf]`, func(t *testing.T, m *Matrix) {
			if m.Checks[0].Params != nil {
				t.Errorf("params: got %s, want nil", m.Checks[0].Params)
			}
		}},
		{"check timeout is not a param", `
kernels: [` + kernel + `]
checks:
  - btf: {timeout: 1m}`, func(t *testing.T, m *Matrix) {
			equal(t, "timeout", m.Checks[0].Timeout, time.Minute)
			if m.Checks[0].Params != nil {
				t.Errorf("params: got %s, want nil", m.Checks[0].Params)
			}
		}},
		{"check params and timeout", `
kernels: [` + kernel + `]
checks:
  - btf:
      require: [task_struct]
      timeout: 2m`, func(t *testing.T, m *Matrix) {
			equal(t, "timeout", m.Checks[0].Timeout, 2*time.Minute)
			equal(t, "params", string(m.Checks[0].Params), `{"require":["task_struct"]}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMatrix("m.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

func TestParseMatrixAliases(t *testing.T) {
	m, err := ParseMatrix("m.yaml", []byte(`
kernels:
  - {name: a, source: &deb {debian: {suite: bookworm}}}
  - {name: b, source: *deb}
checks: [btf]
`))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "suite", m.Kernels[1].Source.Debian.Suite, "bookworm")
}

// TestParseMatrixErrors checks that each problem is reported at its position
// ("m.yaml:LINE:COL") with the words that say what is wrong.
func TestParseMatrixErrors(t *testing.T) {
	const (
		kernel = "kernels: [{name: k, source: {debian: {suite: bookworm}}}]\n"
		checks = "checks: [btf]\n"
	)
	for _, tc := range []struct {
		name  string
		yaml  string
		pos   string
		words []string
	}{
		// Unknown keys, everywhere.
		{"top-level key", "kernel: []\n" + checks, "1:1", []string{`unknown key "kernel"`, `did you mean "kernels"?`, "allowed keys: defaults, kernels, checks"}},
		{"defaults key", "defaults: {mem: 1G}\n" + kernel + checks, "1:12", []string{`defaults: unknown key "mem"`, "allowed keys: memory, cpus, timeout, check_timeout"}},
		{"kernel key typo", "kernels:\n  - name: k\n    sourc: {debian: {suite: bookworm}}\n" + checks, "3:5", []string{`kernels[0]: unknown key "sourc"`, `did you mean "source"?`, "allowed keys: name, arch, source, memory, cpus"}},
		{"source kind", "kernels: [{name: k, source: {docker: x}}]\n" + checks, "1:30", []string{`kernels[0].source: unknown key "docker"`, "allowed keys: debian, ubuntu, rpm, oci, ubuntu-mainline, deb, file, build"}},
		{"debian key", "kernels: [{name: k, source: {debian: {suit: bookworm}}}]\n" + checks, "1:39", []string{`unknown key "suit"`, `did you mean "suite"?`, "allowed keys: suite, mirror, flavour"}},
		{"check param", kernel + "checks:\n  - btf: {requires: [x]}\n", "3:11", []string{`checks[0].btf: unknown key "requires"`, `did you mean "require"?`, "allowed keys: require, timeout"}},
		{"duplicate key", "defaults:\n  cpus: 1\n  cpus: 2\n" + kernel + checks, "3:3", []string{`duplicate key "cpus"`, "first at line 2"}},

		// Wrong types.
		{"cpus word", "defaults: {cpus: two}\n" + kernel + checks, "1:18", []string{"defaults.cpus", "expected a number of CPUs", `got "two"`}},
		{"cpus zero", "kernels: [{name: k, cpus: 0, source: {debian: {suite: bookworm}}}]\n" + checks, "1:27", []string{"kernels[0].cpus", "from 1 to 64"}},
		{"memory word", "defaults: {memory: lots}\n" + kernel + checks, "1:20", []string{"defaults.memory", "expected a size like 512M", `got "lots"`}},
		{"memory unit", "defaults: {memory: 512}\n" + kernel + checks, "1:20", []string{"expected a size like 512M", "add a unit"}},
		{"memory zero", "defaults: {memory: 0M}\n" + kernel + checks, "1:20", []string{"expected a size like 512M"}},
		{"timeout", "defaults: {timeout: 5 parsecs}\n" + kernel + checks, "1:21", []string{"defaults.timeout", "expected a duration like 10m", `got "5 parsecs"`}},
		{"check timeout", "defaults: {check_timeout: -1m}\n" + kernel + checks, "1:27", []string{"defaults.check_timeout", "expected a duration"}},
		{"timeout in check", kernel + "checks: [{btf: {timeout: soon}}]\n", "2:26", []string{"checks[0].btf.timeout", "expected a duration"}},
		{"arch", "kernels: [{name: k, arch: [x86_64, sparc], source: {debian: {suite: bookworm}}}]\n" + checks, "1:36", []string{"kernels[0].arch", `unknown arch "sparc"`, "x86_64 or arm64"}},
		{"arch scalar", "kernels: [{name: k, arch: sparc, source: {debian: {suite: bookworm}}}]\n" + checks, "1:27", []string{`unknown arch "sparc"`}},
		{"arch empty", "kernels: [{name: k, arch: [], source: {debian: {suite: bookworm}}}]\n" + checks, "1:27", []string{"expected at least one arch"}},
		{"arch twice", "kernels: [{name: k, arch: [arm64, aarch64], source: {debian: {suite: bookworm}}}]\n" + checks, "1:35", []string{"arch arm64 listed twice"}},
		{"kernels not a list", "kernels: {name: k}\n" + checks, "1:10", []string{"kernels: expected a list", "got a mapping"}},
		{"kernel not a mapping", "kernels: [k]\n" + checks, "1:11", []string{"kernels[0]: expected a mapping with keys name, arch, source", `got "k"`}},
		{"null kernel", "kernels:\n  -\n" + checks, "2:4", []string{"kernels[0]: expected a kernel, got nothing"}},
		{"requires list", kernel + "checks: [{btf: {require: task_struct}}]\n", "2:26", []string{"checks[0].btf.require: expected a list", `got "task_struct"`}},
		{"params not a mapping", kernel + "checks: [{btf: [a]}]\n", "2:16", []string{"checks[0].btf: expected a mapping with keys require, timeout"}},

		// Names.
		{"missing name", "kernels:\n  - source: {debian: {suite: bookworm}}\n" + checks, "2:5", []string{"kernels[0]: missing name"}},
		{"empty name", "kernels: [{name: \"\", source: {debian: {suite: bookworm}}}]\n" + checks, "1:18", []string{"kernels[0]: missing name"}},
		{"null name", "kernels:\n  - name:\n    source: {debian: {suite: bookworm}}\n" + checks, "2:5", []string{"kernels[0]: missing name"}},
		{"name with slash", "kernels: [{name: ../etc, source: {debian: {suite: bookworm}}}]\n" + checks, "1:18", []string{"kernels[0].name", `"../etc" is not usable as a directory name`}},
		{"name dotdot", "kernels: [{name: .., source: {debian: {suite: bookworm}}}]\n" + checks, "1:18", []string{"not usable as a directory name"}},
		{"name space", "kernels: [{name: my kernel, source: {debian: {suite: bookworm}}}]\n" + checks, "1:18", []string{"not usable as a directory name"}},
		{"duplicate name", "kernels:\n  - {name: k, source: {debian: {suite: bookworm}}}\n  - {name: k, source: {debian: {suite: trixie}}}\n" + checks, "3:12", []string{"kernels[1].name", `duplicate kernel "k"`, "first at line 2"}},

		// Sources.
		{"missing source", "kernels: [{name: k}]\n" + checks, "1:11", []string{"kernels[0]: missing source", "expected one of: debian"}},
		{"empty source", "kernels: [{name: k, source: {}}]\n" + checks, "1:29", []string{"kernels[0].source: expected one of: debian"}},
		{"source scalar", "kernels: [{name: k, source: bookworm}]\n" + checks, "1:29", []string{"kernels[0].source: expected a mapping with keys debian", `got "bookworm"`}},
		{"debian without settings", "kernels: [{name: k, source: {debian: }}]\n" + checks, "1:30", []string{"kernels[0].source.debian: missing suite", "like bookworm"}},
		{"empty suite", "kernels: [{name: k, source: {debian: {suite: \"\"}}}]\n" + checks, "1:46", []string{"kernels[0].source.debian: missing suite"}},
		{"no suite", "kernels: [{name: k, source: {debian: {mirror: \"http://x\"}}}]\n" + checks, "1:38", []string{"kernels[0].source.debian: missing suite"}},
		{"bad suite", "kernels: [{name: k, source: {debian: {suite: ../x}}}]\n" + checks, "1:46", []string{"kernels[0].source.debian.suite", "expected a Debian suite", `"../x"`}},
		{"bad flavour", "kernels: [{name: k, source: {debian: {suite: sid, flavour: a/b}}}]\n" + checks, "1:60", []string{"flavour", "expected a kernel flavour"}},

		// Lists and checks.
		{"no kernels", checks, "1:1", []string{"missing kernels"}},
		{"empty kernels", "kernels: []\n" + checks, "1:10", []string{"kernels: expected at least one kernel"}},
		{"no checks", kernel, "1:1", []string{"missing checks"}},
		{"empty checks", kernel + "checks: []\n", "2:9", []string{"checks: expected at least one check", "known checks: beyla, btf"}},
		{"unknown check", kernel + "checks:\n  - bft\n", "3:5", []string{`checks[0]: unknown check "bft"`, `did you mean "btf"?`, "known checks: beyla, btf"}},
		{"unknown check with params", kernel + "checks:\n  - frobnicate: {objects: [x.o]}\n", "3:5", []string{`unknown check "frobnicate"`, "known checks: beyla, btf"}},
		{"params not indented", kernel + "checks:\n  - btf:\n    require: [x]\n", "3:5", []string{"checks[0]: expected one check per list item", "got keys btf, require", "indent"}},
		{"duplicate check", kernel + "checks: [btf, btf]\n", "2:15", []string{`checks[1]: duplicate check "btf"`, "first at line 2"}},
		{"null check", kernel + "checks:\n  -\n", "3:4", []string{"checks[0]: expected a check name", "got nothing"}},

		// Documents.
		{"empty", "", "1:1", []string{"empty matrix"}},
		{"only comments", "# nothing\n", "1:1", []string{"empty matrix"}},
		{"not a mapping", "- a\n", "1:1", []string{"expected a mapping with keys defaults, kernels, checks", "got a list"}},
		{"second document", kernel + checks + "---\nx: 1\n", "3:1", []string{"second YAML document"}},
		{"syntax", kernel + "checks: [btf\n", "2:1", []string{"invalid YAML", "did not find expected"}},
		{"syntax mapping", "defaults: memory: 1G\n", "1:1", []string{"invalid YAML", "mapping values are not allowed"}},
		{"tab indent", "kernels:\n\t- name: k\n", "2:1", []string{"invalid YAML", "indent with spaces, not tabs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMatrix("m.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, got %+v", m)
			}
			if m != nil {
				t.Error("got a matrix with an error")
			}
			if !errors.Is(err, ErrBadMatrix) {
				t.Errorf("error does not match ErrBadMatrix: %v", err)
			}
			var me *MatrixError
			if !errors.As(err, &me) {
				t.Errorf("error is no *MatrixError: %T", err)
			}
			if !hasErrorLine(err.Error(), "m.yaml:"+tc.pos+": ", tc.words) {
				t.Errorf("want a line starting m.yaml:%s: with %q, got:\n%v", tc.pos, tc.words, err)
			}
		})
	}
}

func hasErrorLine(msg, prefix string, words []string) bool {
	for line := range strings.SplitSeq(msg, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if ok && !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(rest, w) }) {
			return true
		}
	}
	return false
}

func TestParseMatrixCollectsErrors(t *testing.T) {
	_, err := ParseMatrix("m.yaml", []byte(`
defaults: {cpus: two}
kernels:
  - name: a/b
    arch: [sparc]
    source: {debian: {suite: bookworm}}
checks: [bft]
`))
	want := []string{
		`m.yaml:2:18: defaults.cpus: expected a number of CPUs from 1 to 64, got "two"`,
		`m.yaml:4:11: kernels[0].name: "a/b" is not usable as a directory name; use letters, digits, '.', '_' and '-'`,
		`m.yaml:5:12: kernels[0].arch: unknown arch "sparc" (want x86_64 or arm64)`,
		`m.yaml:7:10: checks[0]: unknown check "bft" (did you mean "btf"?); known checks: ` + strings.Join(knownChecks(), ", "),
	}
	if err == nil {
		t.Fatal("no error")
	}
	equal(t, "errors", strings.Split(err.Error(), "\n"), want)

	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if me := (*MatrixError)(nil); errors.As(e, &me) && errors.Is(e, ErrBadMatrix) {
			n++
		}
	}
	equal(t, "MatrixErrors", n, len(want))
}

func TestMatrixErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  MatrixError
		want string
	}{
		{MatrixError{"m.yaml", 3, 7, "oops"}, "m.yaml:3:7: oops"},
		{MatrixError{"m.yaml", 3, 0, "oops"}, "m.yaml:3:1: oops"},
		{MatrixError{"m.yaml", 0, 0, "oops"}, "m.yaml: oops"},
		{MatrixError{"", 3, 7, "oops"}, "3:7: oops"},
		{MatrixError{"", 0, 0, "oops"}, "oops"},
	} {
		equal(t, "Error()", tc.err.Error(), tc.want)
	}
}

func TestLoadMatrixMissing(t *testing.T) {
	_, err := LoadMatrix(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrBadMatrix) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want ErrBadMatrix and fs.ErrNotExist, got %v", err)
	}
	if !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error does not name the file: %v", err)
	}
}

// TestOneKind covers two kinds of source at once, which kernels.Spec cannot
// express yet with a single kind.
func TestOneKind(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"{debian: {}}", ""},
		{"{debian: }", ""},
		{"{}", "f:1:1: s: expected one of: debian, oci"},
		{"{debian: {}, oci: x}", "f:1:1: s: has debian and oci; expected exactly one"},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &n); err != nil {
			t.Fatal(err)
		}
		p := &matrixParser{file: "f"}
		p.oneKind(n.Content[0], []string{"debian", "oci"}, "s")
		got := ""
		if err := p.err(); err != nil {
			got = err.Error()
		}
		equal(t, tc.yaml, got, tc.want)
	}
}

// TestMatrixGolden pins the exact text of the errors for whole files in
// testdata/matrix: each bad-*.yaml has its expected errors in bad-*.err.
// Run with -update to rewrite them.
func TestMatrixGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/matrix/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no testdata", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := LoadMatrix(file)
			if !strings.HasPrefix(filepath.Base(file), "bad-") {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%swant:\n%s", got, want)
			}
		})
	}
}

func testMatrix(t *testing.T) *Matrix {
	t.Helper()
	m, err := ParseMatrix("m.yaml", []byte(`
kernels:
  - {name: "5.10", arch: x86_64, source: {debian: {suite: bullseye}}}
  - {name: "6.1", source: {debian: {suite: bookworm}}}
  - {name: "6.12", arch: [arm64, x86_64], source: {debian: {suite: trixie}}}
checks:
  - btf: {require: [sock]}
`))
	if err != nil {
		t.Fatal(err)
	}
	// A second check, to select from; it need not be registered.
	m.Checks = append(m.Checks, Check{Name: "features", Timeout: time.Minute})
	return m
}

func labels(m *Matrix) []string {
	var ls []string
	for _, tg := range m.Targets() {
		ls = append(ls, tg.Label())
	}
	return ls
}

func TestTargets(t *testing.T) {
	equal(t, "targets", labels(testMatrix(t)), []string{"5.10/x86_64", "6.1/x86_64", "6.1/arm64", "6.12/arm64", "6.12/x86_64"})
	equal(t, "no kernels", len((&Matrix{}).Targets()), 0)
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kernels []string
		arches  []kernels.Arch
		checks  []string
		targets []string
		chosen  []string
	}{
		{"all", nil, nil, nil, []string{"5.10/x86_64", "6.1/x86_64", "6.1/arm64", "6.12/arm64", "6.12/x86_64"}, []string{"btf", "features"}},
		{"kernels in matrix order", []string{"6.12", "5.10"}, nil, nil, []string{"5.10/x86_64", "6.12/arm64", "6.12/x86_64"}, []string{"btf", "features"}},
		{"arch drops kernels without it", nil, []kernels.Arch{kernels.ARM64}, nil, []string{"6.1/arm64", "6.12/arm64"}, []string{"btf", "features"}},
		{"kernel and arch", []string{"6.1"}, []kernels.Arch{kernels.X86_64}, nil, []string{"6.1/x86_64"}, []string{"btf", "features"}},
		{"checks in matrix order", nil, nil, []string{"features", "btf"}, []string{"5.10/x86_64", "6.1/x86_64", "6.1/arm64", "6.12/arm64", "6.12/x86_64"}, []string{"btf", "features"}},
		{"one check", []string{"6.1"}, nil, []string{"features"}, []string{"6.1/x86_64", "6.1/arm64"}, []string{"features"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMatrix(t)
			before := labels(m)
			s, err := m.Select(tc.kernels, tc.arches, tc.checks)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "targets", labels(s), tc.targets)
			var names []string
			for _, c := range s.Checks {
				names = append(names, c.Name)
			}
			equal(t, "checks", names, tc.chosen)
			equal(t, "original", labels(m), before)
			equal(t, "path", s.Path, m.Path)
			equal(t, "defaults", s.Defaults, m.Defaults)
		})
	}
}

func TestSelectErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kernels []string
		arches  []kernels.Arch
		checks  []string
		want    string
	}{
		{"kernel", []string{"6.2"}, nil, nil, `m.yaml: no kernel "6.2" (did you mean "6.1"?); kernels: 5.10, 6.1, 6.12`},
		{"arch", []string{"5.10"}, []kernels.Arch{"riscv64"}, nil, "m.yaml: no kernel runs on riscv64; arches: x86_64, arm64"},
		{"check", nil, nil, []string{"verifier"}, `m.yaml: no check "verifier"; checks: btf, features`},
		{"all unknowns at once", []string{"4.19"}, nil, []string{"bft"}, "m.yaml: no kernel \"4.19\"; kernels: 5.10, 6.1, 6.12\n" +
			`m.yaml: no check "bft" (did you mean "btf"?); checks: btf, features`},
		{"nothing left", []string{"5.10"}, []kernels.Arch{kernels.ARM64}, nil, "m.yaml: no selected kernel (5.10) runs on arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := testMatrix(t).Select(tc.kernels, tc.arches, tc.checks)
			if err == nil {
				t.Fatalf("no error, got %v", labels(s))
			}
			if !errors.Is(err, ErrBadMatrix) {
				t.Errorf("error does not match ErrBadMatrix: %v", err)
			}
			equal(t, "error", err.Error(), tc.want)
		})
	}
}

func TestCheckParamsTypes(t *testing.T) {
	// Every registered parameter type must be a struct that yamlstrict.Decode
	// can check and that encodes to a JSON object for the guest.
	for name, hc := range hostChecks {
		typ := hc.params
		if typ.Kind() != reflect.Struct {
			t.Errorf("%s: params type %s is not a struct", name, typ)
			continue
		}
		if slices.Contains(yamlstrict.FieldNames(typ), "timeout") {
			t.Errorf("%s: params type %s uses the reserved key timeout", name, typ)
		}
		if _, err := json.Marshal(reflect.New(typ).Interface()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}
