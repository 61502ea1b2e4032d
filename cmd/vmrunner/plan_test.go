package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/plan"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

const shardMatrix = `kernels:
  - {name: "5.10", arch: [x86_64, arm64], source: {debian: {suite: bullseye}}}
  - {name: "6.1", arch: [x86_64, arm64], source: {debian: {suite: bookworm}}}
  - {name: "6.12", arch: [x86_64, arm64], source: {debian: {suite: trixie}}}
checks:
  - btf: {require: [task_struct]}
  - features: {programs: none, maps: none, helpers: [loop]}
`

func writeMatrix(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "matrix.yaml")
	if err := os.WriteFile(path, []byte(shardMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs the command in-process and returns its exit code, output and
// error text (what main prints after "vmrunner: ").
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return exitCode(err), out.String(), msg
}

func githubPlan(t *testing.T, args ...string) []plan.GitHubEntry {
	t.Helper()
	code, out, msg := cli(t, append([]string{"plan", "--format", "github"}, args...)...)
	if code != 0 {
		t.Fatalf("plan %v: exit %d: %s", args, code, msg)
	}
	var m struct{ Include []plan.GitHubEntry }
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("plan output %q: %v", out, err)
	}
	return m.Include
}

func TestPlanCommand(t *testing.T) {
	path := writeMatrix(t)
	a := githubPlan(t, path, "--shards", "3")
	if b := githubPlan(t, path, "--shards", "3"); !equalJSON(a, b) {
		t.Errorf("two plans of the same input differ:\n%v\n%v", a, b)
	}
	if len(a) != 3 || a[0].Shard != "1/3" || a[2].Runner != plan.DefaultRunner || len(a[0].Targets) != 2 {
		t.Errorf("plan %+v", a)
	}
	// A lock file next to the matrix is part of the plan.
	if err := os.WriteFile(strings.TrimSuffix(path, ".yaml")+".lock", []byte(`{"version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	locked := githubPlan(t, path, "--shards", "3")
	if locked[0].Plan == a[0].Plan {
		t.Error("a lock file did not change the plan's hash")
	}
	// Timings of a previous run: the slow arm64 targets are spread out.
	prev := writeTimings(t, map[string]int64{"5.10/arm64": 60_000, "6.1/arm64": 50_000, "6.12/arm64": 40_000,
		"5.10/x86_64": 5000, "6.1/x86_64": 5000, "6.12/x86_64": 5000})
	timed := githubPlan(t, path, "--shards", "3", "--timings", prev)
	for _, e := range timed {
		arm := 0
		for _, tg := range e.Targets {
			if strings.HasSuffix(tg, "/arm64") {
				arm++
			}
		}
		if arm != 1 {
			t.Errorf("shard %s holds %v: want one arm64 target each", e.Shard, e.Targets)
		}
	}
	split := githubPlan(t, path, "--shards", "3", "--runner", "arm64=ubuntu-24.04-arm", "--arch", "arm64", "--arch", "x86_64")
	for _, e := range split {
		for _, tg := range e.Targets {
			if strings.HasSuffix(tg, "/arm64") != (e.Runner == "ubuntu-24.04-arm") {
				t.Errorf("shard %s on %s holds %s", e.Shard, e.Runner, tg)
			}
		}
	}

	code, out, _ := cli(t, "plan", path, "--shards", "2", "--timings", prev)
	if code != 0 || !strings.Contains(out, "expected makespan 1m30s (lower bound 1m22.5s") {
		t.Errorf("text plan, exit %d:\n%s", code, out)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", path}, "--shards: give the number of shards"},
		{[]string{"plan", path, "--shards", "7"}, "7 shards for 6 targets: give at most 6 shards"},
		{[]string{"plan", path, "--shards", "2", "--format", "yaml"}, `--format "yaml": want text or github`},
		{[]string{"plan", path, "--shards", "2", "--runner", "arm64"}, "want ARCH=LABEL"},
		{[]string{"plan", path, "--shards", "2", "--timings", filepath.Join(t.TempDir(), "nope.json")}, "--timings: load run"},
		{[]string{"plan", path, "--shards", "1", "--runner", "arm64=ubuntu-24.04-arm"}, "give at least 2 shards"},
		{[]string{"plan", path, "--shards", "2", "--kernel", "4.19"}, "4.19"},
		{[]string{"run", path, "--shard", "4/3"}, `shard "4/3": want I/N`},
		{[]string{"run", path, "--shard", "1/3", "--plan-hash", "0123456789abcdef"}, "--plan-hash 0123456789ab: the plan here is "},
		{[]string{"run", path, "--timings", prev}, "go with --shard I/N"},
	} {
		code, _, msg := cli(t, bad.args...)
		if code != results.ExitBadInput || !strings.Contains(msg, bad.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, %q; want 2 and %q on one line", bad.args, code, msg, bad.want)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// writeTimings writes a previous run's results.json with one record per
// target lasting ms.
func writeTimings(t *testing.T, ms map[string]int64) string {
	t.Helper()
	var rep results.Report
	for tg, d := range ms {
		k, a, _ := strings.Cut(tg, "/")
		rep.Results = append(rep.Results, results.Record{Kernel: k, Arch: a, Check: "btf", Status: protocol.StatusPass, DurationMS: d})
	}
	b, _ := json.Marshal(rep)
	path := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// shardRuns writes, for each shard of the real plan of the matrix at path,
// the run directory a `run --shard` would leave: results.json with the
// shard and a console log per target. fail names a target whose btf fails.
func shardRuns(t *testing.T, path string, n int, fail string) []string {
	t.Helper()
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for i := 1; i <= n; i++ {
		_, shard, err := shardOf(m, plan.Shard{Index: i}.Name(n), "", planFlags{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "shard")
		rep := results.Report{Run: results.RunInfo{ID: "shard-run", Matrix: path, Host: "runner", Accel: "tcg", Finished: true, Shard: shard}}
		for _, tg := range shard.Targets[i-1] {
			k, a := tg.Kernel, tg.Arch
			vm := k + "-" + a
			os.MkdirAll(filepath.Join(dir, vm), 0o755)
			os.WriteFile(filepath.Join(dir, vm, "console.log"), []byte("[    0.000000] Linux version "+k+"\n"), 0o644)
			for _, c := range shard.Checks {
				st := protocol.StatusPass
				if tg.String() == fail && c == "btf" {
					st = protocol.StatusFail
				}
				rep.Results = append(rep.Results, results.Record{Kernel: k, Arch: a, Check: c, Status: st, Console: vm + "/console.log", DurationMS: 10})
			}
		}
		rep.Run.ExitCode = results.ExitCode(rep.Results)
		b, _ := json.Marshal(rep)
		os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644)
		dirs = append(dirs, dir)
	}
	return dirs
}

func TestReportMerge(t *testing.T) {
	path := writeMatrix(t)
	shards := shardRuns(t, path, 3, "6.1/arm64")
	out := filepath.Join(t.TempDir(), "merged")
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, stdout, msg := cli(t, append([]string{"report", "merge", out, "--junit", junit}, shards...)...)
	if code != results.ExitFail {
		t.Fatalf("merge: exit %d (%s), want 1 (a check failed)\n%s", code, msg, stdout)
	}
	if !strings.Contains(stdout, "merged 3 of 3 shards of plan ") {
		t.Errorf("output:\n%s", stdout)
	}
	rep, err := results.ReadReport(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 12 || rep.Run.ExitCode != 1 || rep.Run.Shard == nil || rep.Run.Shard.Count != 3 {
		t.Errorf("merged run: %d records, %+v", len(rep.Results), rep.Run)
	}
	for _, r := range rep.Results {
		if _, err := os.Stat(filepath.Join(out, r.Console)); err != nil {
			t.Errorf("console of %s/%s: %v", r.Kernel, r.Arch, err)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil || !bytes.Contains(page, []byte("6.12")) {
		t.Errorf("report.html: %v", err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	b, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(b, &suites); err != nil || suites.Tests != 12 || suites.Failures != 1 {
		t.Errorf("junit: %d tests, %d failures, %v", suites.Tests, suites.Failures, err)
	}
	// The merged run compares with itself like any run.
	if code, _, msg := cli(t, "report", "compare", out, out); code != 0 {
		t.Errorf("compare merged with itself: exit %d %s", code, msg)
	}

	// With a shard missing: refused, or error records with --allow-partial.
	code, _, msg = cli(t, "report", "merge", filepath.Join(t.TempDir(), "m"), shards[0], shards[2])
	if code != results.ExitBadInput || !strings.Contains(msg, "shard 2/3 (") || !strings.Contains(msg, "is missing") {
		t.Errorf("missing shard: exit %d %q", code, msg)
	}
	partial := filepath.Join(t.TempDir(), "partial")
	code, _, msg = cli(t, "report", "merge", "--allow-partial", partial, shards[0], shards[2])
	if code != results.ExitInfra {
		t.Errorf("--allow-partial: exit %d %q, want 3", code, msg)
	}
	prep, err := results.ReadReport(filepath.Join(partial, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, r := range prep.Results {
		if r.ErrorKind == results.KindMissing {
			missing++
		}
	}
	if missing != 4 || len(prep.Results) != 12 {
		t.Errorf("partial merge: %d records, %d missing; want 12 and 4", len(prep.Results), missing)
	}

	// Refusals: one line each, exit 2.
	other := writeMatrix(t)
	os.WriteFile(other, []byte(shardMatrix+"# another matrix\n"), 0o644)
	otherShards := shardRuns(t, other, 3, "")
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	os.MkdirAll(corrupt, 0o755)
	os.WriteFile(filepath.Join(corrupt, "results.json"), []byte(`{"run": {"id": `), 0o644)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	unsharded := writeRun(t, "plain", nil)
	// A shard changed after its run, four ways.
	changed := func(change func(dir string, rep *results.Report)) string {
		dir := shardRuns(t, path, 3, "")[1]
		rep, err := results.ReadReport(filepath.Join(dir, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		change(dir, &rep)
		b, _ := json.Marshal(rep)
		if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	doubled := changed(func(_ string, rep *results.Report) { rep.Results = append(rep.Results, rep.Results[0]) })
	flipped := changed(func(_ string, rep *results.Report) { rep.Run.ExitCode = results.ExitFail })
	linked := changed(func(dir string, rep *results.Report) {
		console := filepath.Join(dir, rep.Results[0].Console)
		os.Remove(console)
		if err := os.Symlink("/etc/hostname", console); err != nil {
			t.Fatal(err)
		}
	})
	huge := changed(func(string, *results.Report) {})
	if err := os.Truncate(filepath.Join(huge, "results.json"), results.MaxShardBytes+1); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		args []string
		want string
	}{
		{"other matrix", []string{shards[0], otherShards[1], shards[2]}, "ran different matrices"},
		{"doubled", []string{shards[0], shards[1], shards[1], shards[2]}, "shard 2/3 is given twice"},
		{"corrupt", []string{shards[0], corrupt}, "parse " + filepath.Join(corrupt, "results.json")},
		{"not a shard", []string{shards[0], unsharded}, unsharded + " is not a shard run"},
		{"out not empty", []string{"OUT=" + full, shards[0]}, full + " is not empty"},
		{"doubled record", []string{shards[0], doubled, shards[2]}, doubled + " has two records for "},
		{"exit code changed", []string{shards[0], flipped, shards[2]}, flipped + ": its run.exit_code is 1, but its records make exit code 0"},
		{"symlinked console.log", []string{shards[0], linked, shards[2]}, "console.log is not a regular file"},
		{"too large", []string{shards[0], huge, shards[2]}, "is 64 MiB, more than the 64 MiB a shard's results.json may have"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			args := bad.args
			if o, ok := strings.CutPrefix(args[0], "OUT="); ok {
				dest, args = o, args[1:]
			}
			code, _, msg := cli(t, append([]string{"report", "merge", dest}, args...)...)
			if code != results.ExitBadInput || !strings.Contains(msg, bad.want) || strings.Contains(msg, "\n") {
				t.Errorf("exit %d, %q; want 2 and %q on one line", code, msg, bad.want)
			}
			if dest != full {
				if left, _ := os.ReadDir(filepath.Dir(dest)); len(left) != 0 {
					t.Errorf("left behind: %v", left)
				}
			}
		})
	}
}
