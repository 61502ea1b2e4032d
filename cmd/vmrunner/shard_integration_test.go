package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/results"
)

// TestShardedRunMergesLikeOne runs the default matrix whole, then as shards
// 1/3, 2/3 and 3/3 one after the other (as three CI jobs would, in
// parallel), merges them, and requires the merged run to be the whole run's
// twin: the same (kernel, arch, check) records with the same statuses, the
// same exit code, complete JUnit and HTML, and report compare finding no
// verdict change. Twelve VMs: 77-110 s here under TCG (the whole run 34-56 s,
// the shards 11-23 s each).
func TestShardedRunMergesLikeOne(t *testing.T) {
	integration(t)
	const matrix = "../../matrix.yaml"
	base := t.TempDir()

	start := time.Now()
	whole := vmrunnerCLI(t, "run", matrix, "--out", filepath.Join(base, "whole"))
	t.Logf("whole run: %s", time.Since(start).Round(100*time.Millisecond))
	if whole.code != 0 {
		t.Fatalf("whole run: exit %d, want 0", whole.code)
	}
	wholeDir, wholeRep := latestRun(t, filepath.Join(base, "whole"))

	var shardDirs []string
	var plan string
	for i := 1; i <= 3; i++ {
		out := filepath.Join(base, fmt.Sprintf("shard%d", i))
		start := time.Now()
		res := vmrunnerCLI(t, "run", matrix, "--shard", fmt.Sprintf("%d/3", i), "--out", out)
		t.Logf("shard %d/3: %s", i, time.Since(start).Round(100*time.Millisecond))
		if res.code != 0 {
			t.Fatalf("shard %d/3: exit %d, want 0", i, res.code)
		}
		dir, rep := latestRun(t, out)
		s := rep.Run.Shard
		if s == nil || s.Index != i || s.Count != 3 || len(s.Targets) != 3 || len(s.Targets[i-1]) != 2 {
			t.Fatalf("shard %d/3: run.shard %+v", i, s)
		}
		if plan == "" {
			plan = s.Plan
		} else if s.Plan != plan {
			t.Errorf("shard %d/3 has plan %s, shard 1/3 had %s", i, s.Plan, plan)
		}
		// Exactly its targets, each with every check.
		for _, r := range rep.Results {
			if !containsTarget(s.Targets[i-1], results.TargetOf(r)) {
				t.Errorf("shard %d/3 ran %s/%s, not one of %v", i, r.Kernel, r.Arch, s.Targets[i-1])
			}
		}
		shardDirs = append(shardDirs, dir)
	}

	merged := filepath.Join(base, "merged")
	junit := filepath.Join(base, "junit.xml")
	res := vmrunnerCLI(t, append([]string{"report", "merge", merged, "--junit", junit}, shardDirs...)...)
	if res.code != whole.code {
		t.Fatalf("merge: exit %d, the whole run's was %d", res.code, whole.code)
	}
	_, mergedRep := latestRun(t, merged)
	if !mergedRep.Run.Finished || mergedRep.Run.Shard == nil || len(mergedRep.Run.Shard.Parts) != 3 {
		t.Errorf("merged run: %+v", mergedRep.Run)
	}

	statuses := func(rep results.Report) map[string]string {
		m := map[string]string{}
		for _, r := range rep.Results {
			key := r.Kernel + "/" + r.Arch + " " + r.Check
			if _, dup := m[key]; dup {
				t.Errorf("%s: two records", key)
			}
			m[key] = string(r.Status)
		}
		return m
	}
	w, m := statuses(wholeRep), statuses(mergedRep)
	if len(w) < 6*3 {
		t.Errorf("the whole run has %d records: want btf, features and verifier programs on six VMs", len(w))
	}
	for k, s := range w {
		if m[k] != s {
			t.Errorf("%s: %s whole, %q merged", k, s, m[k])
		}
	}
	for k := range m {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: in the merged run only", k)
		}
	}
	// Every record's console log came along.
	for _, r := range mergedRep.Results {
		if fi, err := os.Stat(filepath.Join(merged, r.Console)); err != nil || fi.Size() == 0 {
			t.Errorf("%s/%s %s: console %q: %v", r.Kernel, r.Arch, r.Check, r.Console, err)
		}
		for _, a := range r.Artifacts {
			if _, err := os.Stat(filepath.Join(merged, a)); err != nil {
				t.Errorf("%s/%s %s: artifact: %v", r.Kernel, r.Arch, r.Check, err)
			}
		}
	}

	var suites struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("junit: %v", err)
	}
	cases := 0
	for _, s := range suites.Suites {
		cases += len(s.Cases)
	}
	if cases != len(mergedRep.Results) || len(suites.Suites) != 6 {
		t.Errorf("junit: %d suites, %d cases; want 6 and %d", len(suites.Suites), cases, len(mergedRep.Results))
	}
	page, err := os.ReadFile(filepath.Join(merged, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(string(page))
	shown := map[string]bool{}
	for _, r := range mergedRep.Results {
		if !shown[r.KernelRelease] && !strings.Contains(text, r.KernelRelease) {
			t.Errorf("report.html does not show %s/%s's kernel %s", r.Kernel, r.Arch, r.KernelRelease)
		}
		shown[r.KernelRelease] = true
	}

	cmp := vmrunnerCLI(t, "report", "compare", wholeDir, merged)
	if cmp.code != 0 || !strings.Contains(cmp.stdout, "regressions: 0") {
		t.Errorf("compare whole → merged: exit %d", cmp.code)
	}
	for _, section := range []string{"verdicts:", "added:", "removed:", "kernels changed:", "incomplete"} {
		if strings.Contains(cmp.stdout, section) {
			t.Errorf("compare whole → merged reports %q", section)
		}
	}
}

func latestRun(t *testing.T, out string) (string, results.Report) {
	t.Helper()
	var rep results.Report
	dir := out
	if _, err := os.Stat(filepath.Join(out, "latest")); err == nil {
		dir = readLatest(t, out, &rep)
		return dir, rep
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return dir, rep
}

func containsTarget(ts []results.Target, t results.Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
