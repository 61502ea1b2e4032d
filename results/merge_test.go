package results

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

var planTargets = [][]Target{{{"6.12", "x86_64"}, {"5.10", "arm64"}}, {{"6.1", "x86_64"}, {"6.1", "arm64"}}, {{"5.10", "x86_64"}, {"6.12", "arm64"}}}

// shardRun writes a shard run directory with a console log per target and
// returns it as a Part; status gives each target's btf status.
func shardRun(t testing.TB, index int, status map[string]protocol.Status) Part {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shard")
	started := time.Date(2026, 11, 30, 3, 17, 0, 0, time.UTC).Add(time.Duration(index) * time.Second)
	p := Part{Dir: dir, Report: Report{Run: RunInfo{
		ID: "run-" + string(rune('0'+index)), Matrix: "matrix.yaml", Host: "runner-" + string(rune('0'+index)), Accel: "auto",
		Started: started, DurationMS: int64(index) * 60_000, Finished: true,
		Shard: &Shard{Index: index, Count: 3, Plan: "plan-hash", MatrixHash: "matrix-hash", Checks: []string{"btf", "features"}, Targets: planTargets},
	}}}
	for _, tg := range planTargets[index-1] {
		k, a := tg.Kernel, tg.Arch
		vm := k + "-" + a
		if err := os.MkdirAll(filepath.Join(dir, vm, "verifier"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"console.log": "console of " + tg.String() + "\n", "verifier/x.log": "log of " + tg.String()} {
			if err := os.WriteFile(filepath.Join(dir, vm, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		st := cmpStatus(status[tg.String()])
		p.Results = append(p.Results,
			Record{Kernel: k, Arch: a, Check: "btf", Status: st, Console: vm + "/console.log", DurationMS: 100},
			Record{Kernel: k, Arch: a, Check: "features", Status: protocol.StatusPass, Console: vm + "/console.log", Artifacts: []string{vm + "/verifier/x.log"}})
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Run.ExitCode = ExitCode(p.Results)
	return p
}

func cmpStatus(s protocol.Status) protocol.Status {
	if s == "" {
		return protocol.StatusPass
	}
	return s
}

func TestMerge(t *testing.T) {
	parts := []Part{
		shardRun(t, 3, nil),
		shardRun(t, 1, map[string]protocol.Status{"5.10/arm64": protocol.StatusFail}),
		shardRun(t, 2, nil),
	}
	rep, err := Merge(parts, MergeOptions{ID: "merged"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 12 {
		t.Fatalf("%d records, want 12", len(rep.Results))
	}
	// Shard order, whatever the order given.
	if r := rep.Results[0]; r.Kernel != "6.12" || r.Arch != "x86_64" {
		t.Errorf("first record %s/%s, want shard 1's 6.12/x86_64", r.Kernel, r.Arch)
	}
	run := rep.Run
	if run.ID != "merged" || !run.Finished || run.ExitCode != ExitFail {
		t.Errorf("run %+v: want merged, finished, exit 1", run)
	}
	if !run.Started.Equal(parts[1].Run.Started) || run.DurationMS != 182_000 {
		t.Errorf("started %v, %d ms: want shard 1's start and 3 min 2 s to the end of shard 3", run.Started, run.DurationMS)
	}
	if len(run.Targets) != 6 || run.Targets[0] != (Target{"6.12", "x86_64"}) || run.Targets[5] != (Target{"6.12", "arm64"}) {
		t.Errorf("planned targets %v: want all six, shard 1 first", run.Targets)
	}
	if run.Host != "runner-1, runner-2, runner-3" {
		t.Errorf("host %q", run.Host)
	}
	s := run.Shard
	if s == nil || s.Index != 0 || s.Count != 3 || s.Plan != "plan-hash" || len(s.Parts) != 3 || s.Parts[2].ID != "run-3" || s.Parts[0].DurationMS != 60_000 {
		t.Errorf("shard %+v", s)
	}

	out := filepath.Join(t.TempDir(), "merged")
	if err := WriteMerge(out, rep, parts, nil); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 12 || back.Run.Shard == nil || back.Run.Shard.Parts[1].Host != "runner-2" {
		t.Errorf("results.json read back: %+v", back.Run)
	}
	for _, r := range back.Results {
		for _, f := range append([]string{r.Console}, r.Artifacts...) {
			b, err := os.ReadFile(filepath.Join(out, f))
			if err != nil || !strings.Contains(string(b), r.Kernel+"/"+r.Arch) {
				t.Errorf("%s: %q, %v", f, b, err)
			}
		}
	}
	if err := WriteMerge(out, rep, parts, nil); err == nil || !strings.Contains(err.Error(), "is not empty: give a new directory") {
		t.Errorf("merge into a full directory: %v", err)
	}
}

// Exit code precedence is run's: an infrastructure error in one shard
// outranks a failure in another.
func TestMergeExitCode(t *testing.T) {
	parts := []Part{shardRun(t, 1, map[string]protocol.Status{"5.10/arm64": protocol.StatusFail}), shardRun(t, 2, nil), shardRun(t, 3, nil)}
	parts[2].Results[0].Status, parts[2].Results[0].ErrorKind = protocol.StatusError, KindPanic
	parts[2].Run.ExitCode = ExitInfra
	rep, err := Merge(parts, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.ExitCode != ExitInfra {
		t.Errorf("exit %d, want %d", rep.Run.ExitCode, ExitInfra)
	}
}

func TestMergeAllowPartial(t *testing.T) {
	unfinished := shardRun(t, 3, nil)
	unfinished.Run.Finished = false
	unfinished.Results = unfinished.Results[:2] // 5.10/x86_64 only
	parts := []Part{shardRun(t, 1, nil), unfinished}

	_, err := Merge(parts, MergeOptions{})
	if err == nil || err.Error() != "merge: "+unfinished.Dir+" (shard 3/3) has no records for 6.12/arm64 (finished: false): run it again, or give --allow-partial" {
		t.Errorf("unfinished shard: %v", err)
	}
	rep, err := Merge(parts, MergeOptions{AllowPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run.Finished || rep.Run.ExitCode != ExitInfra {
		t.Errorf("partial merge: finished %t, exit %d; want false, 3", rep.Run.Finished, rep.Run.ExitCode)
	}
	errs := map[string]Record{}
	for _, r := range rep.Results {
		if r.ErrorKind == KindMissing {
			errs[r.Kernel+"/"+r.Arch+" "+r.Check] = r
		}
	}
	// Shard 2's two targets and shard 3's unfinished one, every check.
	for _, want := range []string{"6.1/x86_64 btf", "6.1/x86_64 features", "6.1/arm64 btf", "6.1/arm64 features", "6.12/arm64 btf", "6.12/arm64 features"} {
		r, ok := errs[want]
		if !ok {
			t.Errorf("no error record for %s", want)
			continue
		}
		if r.Status != protocol.StatusError || !strings.Contains(r.Message, "shard ") {
			t.Errorf("%s: %+v", want, r)
		}
	}
	if len(errs) != 6 || len(rep.Results) != 4+2+6 {
		t.Errorf("%d missing records of %d", len(errs), len(rep.Results))
	}
	if !strings.Contains(errs["6.1/arm64 btf"].Message, "shard 2/3 was to run 6.1/arm64, and its run is missing from the merge") {
		t.Errorf("message %q", errs["6.1/arm64 btf"].Message)
	}
	if p := rep.Run.Shard.Parts[1]; p.Index != 2 || p.ID != "" {
		t.Errorf("missing part %+v", p)
	}
}

func TestMergeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(ps []Part) []Part
		want   string
	}{
		{"none", func([]Part) []Part { return nil }, "merge: no runs given"},
		{"not a shard", func(ps []Part) []Part { ps[1].Run.Shard = nil; return ps }, "run it with vmrunner run --shard I/N"},
		{"other matrix", func(ps []Part) []Part { ps[2].Run.Shard.MatrixHash = "other"; return ps }, "ran different matrices (matrix matrix-hash, other)"},
		{"other lock", func(ps []Part) []Part { ps[1].Run.Shard.LockHash = "0123456789abcdef"; return ps }, "different lock files (lock none, 0123456789ab)"},
		{"other plan", func(ps []Part) []Part { ps[1].Run.Shard.Plan = "other-plan"; return ps }, "come from different plans (plan plan-hash of 3 shards, other-plan of 3)"},
		{"other count", func(ps []Part) []Part { ps[1].Run.Shard.Count = 4; return ps }, "of 3 shards, plan-hash of 4"},
		{"twice", func(ps []Part) []Part { return append(ps, ps[1]) }, "shard 2/3 is given twice: "},
		{"missing", func(ps []Part) []Part { return ps[:2] }, "merge: shard 3/3 (5.10/x86_64 6.12/arm64) is missing: give its run, or --allow-partial to merge without it"},
		{"two missing", func(ps []Part) []Part { return ps[1:2] }, "shards 1/3 (6.12/x86_64 5.10/arm64), 3/3 (5.10/x86_64 6.12/arm64) are missing"},
		{"foreign records", func(ps []Part) []Part { ps[0].Results[0].Kernel = "4.19"; return ps }, "has records for 4.19/x86_64, which is not in its shard 1/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := tt.change([]Part{shardRun(t, 1, nil), shardRun(t, 2, nil), shardRun(t, 3, nil)})
			_, err := Merge(parts, MergeOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestCheckNewDir(t *testing.T) {
	dir := t.TempDir()
	if err := CheckNewDir(filepath.Join(dir, "new")); err != nil {
		t.Errorf("new: %v", err)
	}
	if err := CheckNewDir(dir); err != nil {
		t.Errorf("empty: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckNewDir(dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("full: %v", err)
	}
	if err := CheckNewDir(filepath.Join(dir, "f")); err == nil {
		t.Error("a file accepted as a directory")
	}
}

// A shard's directory comes from a CI artifact: a symlink in it is refused,
// never followed.
func TestWriteMergeRefusesSymlinks(t *testing.T) {
	parts := []Part{shardRun(t, 1, nil), shardRun(t, 2, nil), shardRun(t, 3, nil)}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(parts[1].Dir, "6.1-arm64", "console.log.1")); err != nil {
		t.Fatal(err)
	}
	// A symlinked VM directory is skipped: it is not a directory of the run.
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(parts[2].Dir, "4.19-x86_64")); err != nil {
		t.Fatal(err)
	}
	rep, err := Merge(parts, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	err = WriteMerge(out, rep, parts, nil)
	var bad *BadShardError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "6.1-arm64") {
		t.Fatalf("symlink in a VM directory: %v, want a *BadShardError", err)
	}
	// Nothing is left behind: no OUT, no temporary directory beside it.
	if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 0 {
		t.Errorf("left behind after a refusal: %v", left)
	}
	// A symlinked VM directory alone is skipped, not followed.
	if err := os.Remove(filepath.Join(parts[1].Dir, "6.1-arm64", "console.log.1")); err != nil {
		t.Fatal(err)
	}
	if err := WriteMerge(out, rep, parts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(out, "4.19-x86_64")); err == nil {
		t.Error("a symlinked directory was copied")
	}
}

// A failure of the caller's last step (the report page) leaves no OUT
// either, and an existing empty OUT is filled.
func TestWriteMergeAtomic(t *testing.T) {
	parts := []Part{shardRun(t, 1, nil), shardRun(t, 2, nil), shardRun(t, 3, nil)}
	rep, err := Merge(parts, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	boom := errors.New("boom")
	if err := WriteMerge(out, rep, parts, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 0 {
		t.Errorf("left behind after a failure: %v", left)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteMerge(out, rep, parts, func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "report.html"), []byte("page"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "report.html", "6.1-arm64/console.log"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 1 {
		t.Errorf("beside OUT: %v, want OUT alone", left)
	}
}

// Each shard must be whole: a record doubled, or changed so that its run's
// exit code no longer follows from its records, is refused naming it.
func TestMergeRefusesChangedShard(t *testing.T) {
	failing := func(t *testing.T) []Part {
		ps := []Part{shardRun(t, 1, map[string]protocol.Status{"5.10/arm64": protocol.StatusFail}), shardRun(t, 2, nil), shardRun(t, 3, nil)}
		ps[0].Run.ExitCode = ExitFail
		return ps
	}
	tests := []struct {
		name   string
		change func(ps []Part)
		want   string // "" for accepted
	}{
		{"whole", func([]Part) {}, ""},
		{"doubled record", func(ps []Part) { ps[1].Results = append(ps[1].Results, ps[1].Results[1]) },
			"has two records for 6.1/x86_64 features (records 2 and 5): a shard has one record per check of each VM"},
		{"a million copies", func(ps []Part) {
			for range 1000 {
				ps[2].Results = append(ps[2].Results, ps[2].Results[0])
			}
		}, "has two records for 5.10/x86_64 btf (records 1 and 5)"},
		{"fail made pass", func(ps []Part) { ps[0].Results[2].Status = protocol.StatusPass },
			"its run.exit_code is 1, but its records make exit code 0: the shard's results.json was changed; run the shard again"},
		{"pass made fail", func(ps []Part) { ps[1].Results[0].Status = protocol.StatusFail },
			"record 1 (6.1/x86_64 btf, fail) makes exit code 1, but its run.exit_code is 0"},
		{"error dropped", func(ps []Part) { ps[2].Run.ExitCode = ExitInfra; ps[2].Results[0].Status = protocol.StatusPass }, ""},
		{"interrupted", func(ps []Part) { ps[1].Run.ExitCode = ExitInterrupted }, ""},
		{"unfinished", func(ps []Part) { ps[1].Run.Finished = false; ps[1].Results[0].Status = protocol.StatusFail }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := failing(t)
			tt.change(ps)
			rep, err := Merge(ps, MergeOptions{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// The merge keeps a shard's exit code that outranks its records.
				for _, p := range ps {
					if p.Run.Finished && WorseExit(rep.Run.ExitCode, p.Run.ExitCode) != rep.Run.ExitCode {
						t.Errorf("merged exit %d below shard %d's %d", rep.Run.ExitCode, p.Run.Shard.Index, p.Run.ExitCode)
					}
				}
				return
			}
			var bad *BadShardError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a *BadShardError with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// A shard's results.json larger than MaxShardBytes is refused before it is
// read; one a byte under is read.
func TestReadShardBound(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "results.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"run":{},"results":[]}`); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxShardBytes); err != nil { // zeros after the JSON: a sparse file
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadShard(big); err != nil {
		t.Errorf("at the bound: %v", err)
	}
	if err := os.Truncate(big, MaxShardBytes+1); err != nil {
		t.Fatal(err)
	}
	_, err = ReadShard(big)
	if err == nil || err.Error() != "read results: "+big+" is 64 MiB, more than the 64 MiB a shard's results.json may have: it is not a shard vmrunner wrote" {
		t.Errorf("over the bound: %v", err)
	}
	if _, err := ReadShard(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
