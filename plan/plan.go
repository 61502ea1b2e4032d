package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is one kernel × arch of a matrix.
type Target struct {
	Kernel string
	Arch   string
}

// String is the target as people and the github format write it: "6.1/x86_64".
func (t Target) String() string { return t.Kernel + "/" + t.Arch }

// ParseTarget reads "KERNEL/ARCH".
func ParseTarget(s string) (Target, error) {
	k, a, ok := strings.Cut(s, "/")
	if !ok || k == "" || a == "" || strings.Contains(a, "/") {
		return Target{}, fmt.Errorf("target %q: want KERNEL/ARCH, e.g. 6.1/x86_64", s)
	}
	return Target{k, a}, nil
}

// DefaultRunner is the runner label of an arch that Input.Runners does not
// name: GitHub's x86_64 Ubuntu runner, which offers KVM to x86_64 guests and
// emulates arm64 ones.
const DefaultRunner = "ubuntu-24.04"

// Input is everything a plan depends on.
type Input struct {
	Targets []Target // in matrix order, each once
	Checks  []string // the checks every target runs, in matrix order
	Shards  int
	// Costs are the targets' durations in a previous run. Targets it does
	// not have cost the mean of those it has. Nil, or none of the targets
	// in it: every target costs the same.
	Costs map[Target]time.Duration
	// Runners maps an arch to the runner label its targets want; an arch
	// not in it wants DefaultRunner.
	Runners map[string]string
	// MatrixHash and LockHash identify the matrix file and its lock file
	// ("" when there is none); they are part of Hash.
	MatrixHash, LockHash string
}

// Plan is the targets split into shards.
type Plan struct {
	Shards     []Shard
	Checks     []string
	MatrixHash string
	LockHash   string
	// ByTimings says the costs are milliseconds of a previous run; when
	// false every target costs 1 and costs count targets.
	ByTimings bool
	// Longest and Total are the largest and the summed target cost.
	Longest, Total int64
	// Hash names the plan: matrix, lock, checks, shards and costs.
	Hash string
}

// Shard is one job of a plan.
type Shard struct {
	Index   int    // 1-based, as in --shard I/N
	Runner  string // runner label, e.g. ubuntu-24.04
	Targets []Target
	Cost    int64 // sum of its targets' costs (see Plan.ByTimings)
}

// Name is "I/N".
func (s Shard) Name(n int) string { return fmt.Sprintf("%d/%d", s.Index, n) }

// New splits in.Targets into in.Shards shards, longest target first onto
// the least loaded shard of its runner.
func New(in Input) (*Plan, error) {
	if len(in.Targets) == 0 {
		return nil, errors.New("plan: the matrix has no targets")
	}
	if in.Shards < 1 {
		return nil, fmt.Errorf("plan: %d shards: want 1 or more", in.Shards)
	}
	if in.Shards > len(in.Targets) {
		return nil, fmt.Errorf("plan: %d shards for %d targets: give at most %d shards", in.Shards, len(in.Targets), len(in.Targets))
	}
	seen := make(map[Target]bool, len(in.Targets))
	for _, t := range in.Targets {
		if seen[t] {
			return nil, fmt.Errorf("plan: target %s is listed twice", t)
		}
		seen[t] = true
	}
	cost, byTimings := costs(in.Targets, in.Costs)

	// Targets that want different runners never share a shard.
	type group struct {
		runner  string
		members []int // indexes into in.Targets, matrix order
		total   int64
		longest int64
		shards  int
	}
	var groups []*group
	byRunner := map[string]*group{}
	for i, t := range in.Targets {
		r := cmp.Or(in.Runners[t.Arch], DefaultRunner)
		g := byRunner[r]
		if g == nil {
			g = &group{runner: r}
			byRunner[r] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, i)
		g.total += cost[i]
		g.longest = max(g.longest, cost[i])
	}
	if in.Shards < len(groups) {
		var names []string
		for _, g := range groups {
			names = append(names, g.runner)
		}
		return nil, fmt.Errorf("plan: %d shards, but the targets want %d runners (%s): give at least %d shards",
			in.Shards, len(groups), strings.Join(names, ", "), len(groups))
	}
	for _, g := range groups {
		g.shards = 1
	}
	// Each further shard goes to the runner with the most work per shard
	// (that still has a target without a shard of its own).
	for range in.Shards - len(groups) {
		var best *group
		for _, g := range groups {
			if g.shards >= len(g.members) {
				continue
			}
			// g.total/g.shards > best.total/best.shards, without division.
			if best == nil || g.total*int64(best.shards) > best.total*int64(g.shards) {
				best = g
			}
		}
		best.shards++
	}

	p := &Plan{Checks: slices.Clone(in.Checks), MatrixHash: in.MatrixHash, LockHash: in.LockHash, ByTimings: byTimings}
	for _, g := range groups {
		order := slices.Clone(g.members)
		slices.SortStableFunc(order, func(a, b int) int {
			return cmp.Or(cmp.Compare(cost[b], cost[a]), cmp.Compare(a, b))
		})
		shards := make([]Shard, g.shards)
		members := make([][]int, g.shards)
		for _, i := range order {
			least := 0
			for s := range shards {
				if shards[s].Cost < shards[least].Cost {
					least = s
				}
			}
			shards[least].Cost += cost[i]
			members[least] = append(members[least], i)
		}
		for s := range shards {
			slices.Sort(members[s])
			shards[s].Runner = g.runner
			shards[s].Index = len(p.Shards) + 1
			for _, i := range members[s] {
				shards[s].Targets = append(shards[s].Targets, in.Targets[i])
			}
			p.Shards = append(p.Shards, shards[s])
		}
		p.Total += g.total
		p.Longest = max(p.Longest, g.longest)
	}
	p.Hash = hash(p, in.Targets, cost)
	return p, nil
}

// costs returns the cost of each target, in milliseconds when byTimings.
func costs(targets []Target, known map[Target]time.Duration) (cost []int64, byTimings bool) {
	cost = make([]int64, len(targets))
	var sum, n int64
	for _, t := range targets {
		if d, ok := known[t]; ok {
			sum += max(d.Milliseconds(), 1)
			n++
		}
	}
	if n == 0 {
		for i := range cost {
			cost[i] = 1
		}
		return cost, false
	}
	mean := max(sum/n, 1)
	for i, t := range targets {
		if d, ok := known[t]; ok {
			cost[i] = max(d.Milliseconds(), 1)
		} else {
			cost[i] = mean
		}
	}
	return cost, true
}

// hashVersion changes when the planner would place the same input
// differently, so that old and new shards are never merged.
const hashVersion = 1

func hash(p *Plan, targets []Target, cost []int64) string {
	type shard struct {
		Runner  string   `json:"runner"`
		Targets []string `json:"targets"`
	}
	v := struct {
		Version   int      `json:"version"`
		Matrix    string   `json:"matrix"`
		Lock      string   `json:"lock"`
		Checks    []string `json:"checks"`
		ByTimings bool     `json:"by_timings"`
		Costs     []string `json:"costs"`
		Shards    []shard  `json:"shards"`
	}{Version: hashVersion, Matrix: p.MatrixHash, Lock: p.LockHash, Checks: p.Checks, ByTimings: p.ByTimings}
	for i, t := range targets {
		v.Costs = append(v.Costs, t.String()+"="+strconv.FormatInt(cost[i], 10))
	}
	for _, s := range p.Shards {
		sh := shard{Runner: s.Runner}
		for _, t := range s.Targets {
			sh.Targets = append(sh.Targets, t.String())
		}
		v.Shards = append(v.Shards, sh)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and ints only
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Makespan is the expected cost of the longest shard.
func (p *Plan) Makespan() int64 {
	var m int64
	for _, s := range p.Shards {
		m = max(m, s.Cost)
	}
	return m
}

// LowerBound is what no split into len(p.Shards) shards can beat:
// max(longest target, total / shards), rounded up.
func (p *Plan) LowerBound() int64 {
	n := int64(len(p.Shards))
	return max(p.Longest, (p.Total+n-1)/n)
}

// Shard returns shard i of n, checking that n is this plan's count.
func (p *Plan) Shard(i, n int) (Shard, error) {
	if n != len(p.Shards) {
		return Shard{}, fmt.Errorf("shard %d/%d: the plan has %d shards", i, n, len(p.Shards))
	}
	if i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %d/%d: want 1 to %d", i, n, n)
	}
	return p.Shards[i-1], nil
}

// ParseShard reads --shard "I/N".
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("shard %q: want I/N with 1 <= I <= N, e.g. 2/3", s)
	}
	return i, n, nil
}
