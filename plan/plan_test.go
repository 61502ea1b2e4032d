package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// synthetic40 is a results.json of 20 kernels × 2 arches with the costs of
// a real night: x86_64 under KVM in seconds, arm64 emulated four to seven
// times slower, five kernels with a workload check of minutes.
func synthetic40(t *testing.T) ([]Target, map[Target]time.Duration) {
	t.Helper()
	rep, err := results.ReadReport("testdata/timings-40.json")
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, r := range rep.Results {
		if tg := (Target{r.Kernel, r.Arch}); !slices.Contains(targets, tg) {
			targets = append(targets, tg)
		}
	}
	if len(targets) != 40 {
		t.Fatalf("testdata has %d targets, want 40", len(targets))
	}
	return targets, Costs(rep)
}

func defaultTargets() []Target {
	var ts []Target
	for _, k := range []string{"5.10", "6.1", "6.12"} {
		for _, a := range []string{"x86_64", "arm64"} {
			ts = append(ts, Target{k, a})
		}
	}
	return ts
}

// The balance criterion: on 40 targets with real-looking costs,
// the longest shard is within 10% of max(longest target, total / N).
func TestBalanceWithin10Percent(t *testing.T) {
	targets, costs := synthetic40(t)
	for n := 1; n <= 12; n++ {
		p, err := New(Input{Targets: targets, Shards: n, Costs: costs})
		if err != nil {
			t.Fatal(err)
		}
		if !p.ByTimings {
			t.Fatal("costs given but the plan is by target count")
		}
		ms, lb := p.Makespan(), p.LowerBound()
		t.Logf("%2d shards: makespan %7d ms, lower bound %7d ms (+%.1f%%)", n, ms, lb, 100*float64(ms-lb)/float64(lb))
		if float64(ms) > 1.10*float64(lb) {
			t.Errorf("%d shards: makespan %d ms is more than 10%% over the lower bound %d ms", n, ms, lb)
		}
		var sum int64
		for _, s := range p.Shards {
			sum += s.Cost
		}
		if sum != p.Total {
			t.Errorf("%d shards: shard costs add up to %d, total is %d", n, sum, p.Total)
		}
	}
}

func TestEveryTargetInExactlyOneShard(t *testing.T) {
	t40, c40 := synthetic40(t)
	inputs := map[string]Input{
		"default by count":      {Targets: defaultTargets()},
		"40 by timings":         {Targets: t40, Costs: c40},
		"40 by count":           {Targets: t40},
		"arm64 on arm runners":  {Targets: t40, Costs: c40, Runners: map[string]string{"arm64": "ubuntu-24.04-arm"}},
		"partial timings":       {Targets: defaultTargets(), Costs: map[Target]time.Duration{{"6.1", "arm64"}: time.Minute}},
		"timings of other ones": {Targets: defaultTargets(), Costs: map[Target]time.Duration{{"4.19", "arm64"}: time.Minute}},
	}
	for name, in := range inputs {
		groups := 1
		if len(in.Runners) > 0 {
			groups = 2
		}
		for n := groups; n <= len(in.Targets); n++ {
			in.Shards = n
			p, err := New(in)
			if err != nil {
				t.Fatalf("%s, %d shards: %v", name, n, err)
			}
			if len(p.Shards) != n {
				t.Fatalf("%s: %d shards, asked %d", name, len(p.Shards), n)
			}
			count := map[Target]int{}
			for i, s := range p.Shards {
				if s.Index != i+1 {
					t.Errorf("%s: shard %d has index %d", name, i+1, s.Index)
				}
				if len(s.Targets) == 0 {
					t.Errorf("%s, %d shards: shard %d is empty", name, n, s.Index)
				}
				for _, tg := range s.Targets {
					count[tg]++
					if want := cmpOrDefault(in.Runners[tg.Arch]); s.Runner != want {
						t.Errorf("%s: %s on runner %s, want %s", name, tg, s.Runner, want)
					}
				}
			}
			for _, tg := range in.Targets {
				if count[tg] != 1 {
					t.Errorf("%s, %d shards: %s is in %d shards", name, n, tg, count[tg])
				}
			}
			if len(count) != len(in.Targets) {
				t.Errorf("%s, %d shards: %d targets placed, %d given", name, n, len(count), len(in.Targets))
			}
		}
	}
}

func cmpOrDefault(r string) string {
	if r == "" {
		return DefaultRunner
	}
	return r
}

func TestDeterministic(t *testing.T) {
	targets, costs := synthetic40(t)
	// The same costs in another map (another iteration order).
	copied := map[Target]time.Duration{}
	for i := len(targets) - 1; i >= 0; i-- {
		copied[targets[i]] = costs[targets[i]]
	}
	in := Input{Targets: targets, Checks: []string{"btf", "features"}, Shards: 5, Costs: costs, MatrixHash: "m", LockHash: "l"}
	first, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		in.Costs = copied
		p, err := New(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, first) {
			t.Fatalf("same input, different plan:\n%+v\n%+v", p, first)
		}
	}
	// Equal costs everywhere: ties go by matrix order, the same way each time.
	a, _ := New(Input{Targets: defaultTargets(), Shards: 3})
	b, _ := New(Input{Targets: defaultTargets(), Shards: 3})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("by count: %+v != %+v", a, b)
	}
	// By count: shards differ by at most one target.
	for n := 1; n <= 6; n++ {
		p, _ := New(Input{Targets: defaultTargets(), Shards: n})
		lo, hi := 99, 0
		for _, s := range p.Shards {
			lo, hi = min(lo, len(s.Targets)), max(hi, len(s.Targets))
		}
		if hi-lo > 1 {
			t.Errorf("%d shards by count: sizes from %d to %d", n, lo, hi)
		}
	}
}

// The hash changes with every input that matters, and only with those.
func TestHash(t *testing.T) {
	base := Input{Targets: defaultTargets(), Checks: []string{"btf"}, Shards: 3, MatrixHash: "m1", LockHash: "l1"}
	ref, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Hash) != 64 {
		t.Fatalf("hash %q", ref.Hash)
	}
	changes := map[string]func(*Input){
		"matrix":  func(in *Input) { in.MatrixHash = "m2" },
		"lock":    func(in *Input) { in.LockHash = "" },
		"checks":  func(in *Input) { in.Checks = []string{"btf", "features"} },
		"shards":  func(in *Input) { in.Shards = 2 },
		"timings": func(in *Input) { in.Costs = map[Target]time.Duration{{"6.1", "arm64"}: time.Minute} },
		"runners": func(in *Input) { in.Runners = map[string]string{"arm64": "ubuntu-24.04-arm"} },
		"targets": func(in *Input) { in.Targets = in.Targets[:5] },
	}
	for name, change := range changes {
		in := base
		change(&in)
		p, err := New(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Hash == ref.Hash {
			t.Errorf("changing the %s keeps the hash", name)
		}
	}
	// A runner label for an arch the matrix has not changes nothing.
	in := base
	in.Runners = map[string]string{"riscv64": "elsewhere"}
	if p, _ := New(in); p.Hash != ref.Hash {
		t.Error("an unused runner label changed the hash")
	}
}

func TestRunnersSplitArches(t *testing.T) {
	targets, costs := synthetic40(t)
	p, err := New(Input{Targets: targets, Shards: 6, Costs: costs, Runners: map[string]string{"arm64": "ubuntu-24.04-arm"}})
	if err != nil {
		t.Fatal(err)
	}
	perRunner := map[string]int{}
	for _, s := range p.Shards {
		perRunner[s.Runner]++
		for _, tg := range s.Targets {
			if (tg.Arch == "arm64") != (s.Runner == "ubuntu-24.04-arm") {
				t.Errorf("shard %d on %s holds %s", s.Index, s.Runner, tg)
			}
		}
	}
	// arm64 is emulated and about five times the work: it gets more shards.
	if perRunner["ubuntu-24.04-arm"] <= perRunner[DefaultRunner] {
		t.Errorf("shards per runner %v: the slower arch should get more", perRunner)
	}
	if _, err := New(Input{Targets: targets, Shards: 1, Runners: map[string]string{"arm64": "ubuntu-24.04-arm"}}); err == nil ||
		!strings.Contains(err.Error(), "give at least 2 shards") {
		t.Errorf("one shard for two runners: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		in   Input
		want string
	}{
		{Input{Shards: 1}, "no targets"},
		{Input{Targets: defaultTargets(), Shards: 0}, "want 1 or more"},
		{Input{Targets: defaultTargets(), Shards: 7}, "7 shards for 6 targets: give at most 6 shards"},
		{Input{Targets: append(defaultTargets(), Target{"6.1", "arm64"}), Shards: 2}, "6.1/arm64 is listed twice"},
	}
	for _, tt := range tests {
		_, err := New(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%d targets, %d shards) = %v, want %q", len(tt.in.Targets), tt.in.Shards, err, tt.want)
		}
	}
}

func TestCostsFillsTheMean(t *testing.T) {
	rep := results.Report{Results: []results.Record{
		{Kernel: "6.1", Arch: "x86_64", Check: "btf", DurationMS: 100, BootMS: 1000},
		{Kernel: "6.1", Arch: "x86_64", Check: "features", DurationMS: 900, BootMS: 1000},
		{Kernel: "6.1", Arch: "arm64", Check: "btf", DurationMS: 3000, BootMS: 1000},
	}}
	c := Costs(rep)
	if c[Target{"6.1", "x86_64"}] != 2*time.Second || c[Target{"6.1", "arm64"}] != 4*time.Second {
		t.Fatalf("costs %v", c)
	}
	p, err := New(Input{Targets: []Target{{"6.1", "x86_64"}, {"6.1", "arm64"}, {"6.12", "x86_64"}}, Shards: 2, Costs: c})
	if err != nil {
		t.Fatal(err)
	}
	// 6.12 has no timing: it costs the mean, 3 s, and joins 6.1/x86_64.
	if p.Total != 9000 || p.Makespan() != 5000 {
		t.Errorf("total %d, makespan %d; want 9000 and 5000: %+v", p.Total, p.Makespan(), p.Shards)
	}
}

func TestParseShard(t *testing.T) {
	for _, ok := range []struct {
		s    string
		i, n int
	}{{"1/1", 1, 1}, {"2/3", 2, 3}, {"12/12", 12, 12}} {
		i, n, err := ParseShard(ok.s)
		if err != nil || i != ok.i || n != ok.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v", ok.s, i, n, err)
		}
	}
	for _, bad := range []string{"", "1", "0/3", "4/3", "1/0", "a/3", "1/3/4", "-1/3", "1/-3"} {
		if _, _, err := ParseShard(bad); err == nil || !strings.Contains(err.Error(), "want I/N") {
			t.Errorf("ParseShard(%q) = %v", bad, err)
		}
	}
	p, _ := New(Input{Targets: defaultTargets(), Shards: 3})
	if _, err := p.Shard(1, 4); err == nil || !strings.Contains(err.Error(), "the plan has 3 shards") {
		t.Errorf("Shard(1, 4) = %v", err)
	}
	if s, err := p.Shard(3, 3); err != nil || s.Index != 3 {
		t.Errorf("Shard(3, 3) = %+v, %v", s, err)
	}
}

func TestGitHubAndText(t *testing.T) {
	targets, costs := synthetic40(t)
	p, err := New(Input{Targets: targets, Shards: 4, Costs: costs, MatrixHash: "abcdef0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.GitHub()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(b, '\n') {
		t.Error("github format spans lines: $GITHUB_OUTPUT wants one")
	}
	var m struct{ Include []GitHubEntry }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Include) != 4 {
		t.Fatalf("%d entries", len(m.Include))
	}
	seen := 0
	for i, e := range m.Include {
		if e.Index != i+1 || e.Shard != fmt.Sprintf("%d/4", i+1) || e.Runner != DefaultRunner || e.Plan != p.Hash {
			t.Errorf("entry %d: %+v", i, e)
		}
		for _, s := range e.Targets {
			if _, err := ParseTarget(s); err != nil {
				t.Error(err)
			}
		}
		seen += len(e.Targets)
	}
	if seen != 40 {
		t.Errorf("%d targets in the github matrix", seen)
	}

	var out bytes.Buffer
	if err := p.WriteText(&out, "timings-40.json"); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{"plan " + p.Hash[:12], "40 targets in 4 shards", "by the durations in timings-40.json",
		"matrix abcdef012345, lock none", "1/4", "4/4", "expected makespan 9m", "lower bound 9m", "/ 4 shards"} {
		if !strings.Contains(text, want) {
			t.Errorf("text plan lacks %q", want)
		}
	}
	byCount, _ := New(Input{Targets: defaultTargets(), Shards: 4})
	out.Reset()
	_ = byCount.WriteText(&out, "")
	if !strings.Contains(out.String(), "expected makespan 2 targets (lower bound 2 targets = max(longest target 1 target, total 6 targets / 4 shards))") {
		t.Errorf("by count:\n%s", out.String())
	}
}

func TestParseTarget(t *testing.T) {
	if tg, err := ParseTarget("6.1/x86_64"); err != nil || tg != (Target{"6.1", "x86_64"}) {
		t.Errorf("%v %v", tg, err)
	}
	for _, bad := range []string{"6.1", "/x86_64", "6.1/", "6.1/x86_64/z"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}
