package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkWarm prints the wall time of vmrunner's warm paths, every VM
// restored from its snapshot: `run --kernel 6.1 --arch x86_64 --check btf`
// (one VM), `exec --kernel 6.1` of a static hello world, and the default
// matrix. With VMRUNNER_BENCH_BASE set to a git revision (make bench
// BENCH_BASE=REV), the vmrunner of that revision is built too and both
// run side by side with the same agents (so the same snapshots), in
// alternating order round by round, and the medians' ratio is printed:
// after/before. One untimed round warms the caches first. It prints the
// load average, as every figure depends on it, and asserts nothing.
func BenchmarkWarm(b *testing.B) {
	if binDir == "" {
		b.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	matrix, _ := filepath.Abs("../../matrix.yaml")
	dir := b.TempDir()
	hello := filepath.Join(dir, "hello")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", hello, filepath.Join(dir, "main.go"))
	build.Env = append(os.Environ(), "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build hello: %v\n%s", err, out)
	}

	type version struct{ name, bin string }
	versions := []version{{"after", filepath.Join(binDir, "vmrunner")}}
	if rev := os.Getenv("VMRUNNER_BENCH_BASE"); rev != "" {
		versions = append([]version{{"before (" + rev + ")", buildBase(b, rev)}}, versions...)
	}
	workloads := []struct {
		name string
		args []string
	}{
		{"run btf, one VM (6.1/x86_64)", []string{"run", matrix, "--kernel", "6.1", "--arch", "x86_64", "--check", "btf"}},
		{"exec static hello (6.1/x86_64)", []string{"exec", "--kernel", "6.1", "--no-dir", "--", hello}},
		{"default matrix", []string{"run", matrix}},
	}
	timed := func(v version, args []string) time.Duration {
		if args[0] == "run" {
			args = append(slices.Clone(args), "--out", b.TempDir())
		}
		cmd := exec.Command(v.bin, args...)
		// The same agents for every version: the snapshots are the same.
		cmd.Env = append(os.Environ(), "VMRUNNER_AGENT_DIR="+binDir)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %s: %v\n%s", v.name, strings.Join(args, " "), err, out)
		}
		return time.Since(start)
	}
	for _, w := range workloads {
		for _, v := range versions {
			timed(v, w.args) // saves what snapshots are missing
		}
	}
	load := loadAverage()
	b.ResetTimer()
	took := map[string]map[string][]time.Duration{}
	for i := range b.N {
		for _, w := range workloads {
			if took[w.name] == nil {
				took[w.name] = map[string][]time.Duration{}
			}
			order := slices.Clone(versions)
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, v := range order {
				took[w.name][v.name] = append(took[w.name][v.name], timed(v, w.args))
			}
		}
	}
	b.StopTimer()
	b.Logf("load average %s at the start, %s at the end; %d rounds, medians", load, loadAverage(), b.N)
	for i, w := range workloads {
		var line []string
		var medians []time.Duration
		for _, v := range versions {
			ds := slices.Clone(took[w.name][v.name])
			slices.Sort(ds)
			m := ds[len(ds)/2]
			medians = append(medians, m)
			line = append(line, fmt.Sprintf("%s %.2fs %v", v.name, m.Seconds(), roundAll(took[w.name][v.name])))
		}
		b.ReportMetric(medians[len(medians)-1].Seconds(), fmt.Sprintf("w%d-s", i+1))
		if len(medians) == 2 {
			ratio := float64(medians[1]) / float64(medians[0])
			b.ReportMetric(ratio, fmt.Sprintf("w%d-after/before", i+1))
			line = append(line, fmt.Sprintf("ratio %.2f", ratio))
		}
		b.Logf("w%d %s: %s", i+1, w.name, strings.Join(line, "   "))
	}
}

// buildBase builds the vmrunner of git revision rev into a temporary
// directory and returns its path.
func buildBase(b *testing.B, rev string) string {
	b.Helper()
	src := b.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", "../..", rev, src)
	if out, err := archive.CombinedOutput(); err != nil {
		b.Fatalf("git archive %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(b.TempDir(), "vmrunner")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/vmrunner")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build vmrunner %s: %v\n%s", rev, err, out)
	}
	return bin
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}
