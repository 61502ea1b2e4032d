package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkExecVsBTF prints, side by side, the wall time of
// `go test -exec 'vmrunner exec --kernel 6.1 --arch x86_64 --'` on
// examples/tracepoint and of `vmrunner run --kernel 6.1 --arch x86_64
// --check btf`: what running your own tests adds to a boot. Each op runs
// both, alternately, after one untimed round that warms the build and
// initramfs caches. `make bench` runs it; it asserts nothing.
func BenchmarkExecVsBTF(b *testing.B) {
	if binDir == "" {
		b.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	example, _ := filepath.Abs("../../examples/tracepoint")
	matrix, _ := filepath.Abs("../../matrix.yaml")
	vmr := filepath.Join(binDir, "vmrunner")
	goTest := func() time.Duration {
		cmd := exec.Command("go", "test", "-count=1", "-exec", vmr+" exec --kernel 6.1 --arch x86_64 --", ".")
		cmd.Dir = example
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go test -exec: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	btf := func() time.Duration {
		out := b.TempDir()
		cmd := exec.Command(vmr, "run", matrix, "--kernel", "6.1", "--arch", "x86_64", "--check", "btf", "--out", out)
		cmd.Env = os.Environ()
		start := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("vmrunner run: %v\n%s", err, o)
		}
		return time.Since(start)
	}
	goTest()
	btf()
	b.ResetTimer()
	var execTotal, btfTotal time.Duration
	for range b.N {
		execTotal += goTest()
		btfTotal += btf()
	}
	n := float64(b.N)
	b.ReportMetric(execTotal.Seconds()/n, "exec-s/op")
	b.ReportMetric(btfTotal.Seconds()/n, "btf-s/op")
	b.ReportMetric(float64(execTotal)/float64(btfTotal), "exec/btf")
	b.Logf("go test -exec (examples/tracepoint): %.2fs   vmrunner run --check btf: %.2fs   ratio %.2f (mean of %d)",
		execTotal.Seconds()/n, btfTotal.Seconds()/n, float64(execTotal)/float64(btfTotal), b.N)
}

// timedExec runs vmrunner exec with args and returns its wall time and
// stderr; it fails the benchmark unless the program exits 0.
func timedExec(b *testing.B, args ...string) (time.Duration, string) {
	b.Helper()
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), append([]string{"exec"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("vmrunner exec %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return time.Since(start), stderr.String()
}

// BenchmarkExecRestoredVsBooted prints, side by side, the wall time of
// `vmrunner exec --kernel 6.1` running examples/tracepoint's test binary
// (go test -c: cilium/ebpf, a tracepoint, a ring buffer) restored from
// the VM's snapshot, its files sent over the channel, and booted with
// --no-snapshot, its files in a per-run archive; alternately, after one
// untimed round of each. `make bench` runs it; it asserts nothing.
func BenchmarkExecRestoredVsBooted(b *testing.B) {
	if binDir == "" {
		b.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	example, _ := filepath.Abs("../../examples/tracepoint")
	bin := filepath.Join(b.TempDir(), "tracepoint.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = example
	build.Env = append(os.Environ(), "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go test -c: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"--kernel", "6.1", "--dir", example, "--", bin, "-test.v"}
	timedExec(b, args...)
	timedExec(b, append([]string{"--no-snapshot"}, args...)...)
	b.ResetTimer()
	var restored, booted time.Duration
	for range b.N {
		d, _ := timedExec(b, args...)
		restored += d
		d, _ = timedExec(b, append([]string{"--no-snapshot"}, args...)...)
		booted += d
	}
	n := float64(b.N)
	b.ReportMetric(restored.Seconds()/n, "restored-s/op")
	b.ReportMetric(booted.Seconds()/n, "booted-s/op")
	b.ReportMetric(float64(restored)/float64(booted), "restored/booted")
	b.Logf("vmrunner exec of examples/tracepoint's test binary (%.1f MB), 6.1/x86_64: restored %.2fs   booted %.2fs   ratio %.2f (mean of %d)",
		float64(fi.Size())/1e6, restored.Seconds()/n, booted.Seconds()/n, float64(restored)/float64(booted), b.N)
}

// planLog finds, in vmrunner's debug log, when the plan went out and when
// the guest said prepared, and how many bytes of files it took.
var planLog = regexp.MustCompile(`time=(\S+) level=DEBUG msg="(plan sent|guest prepared)".*?(?:file_bytes=(\d+))?$`)

// BenchmarkChannel prints how fast files travel into a restored guest,
// per arch: `vmrunner exec --kernel 6.1` of a small static program with a
// 32 MiB file, from the plan sent to the guest's prepared (every file
// received, written and its SHA-256 checked), as vmrunner's debug log
// times them. It asserts nothing.
func BenchmarkChannel(b *testing.B) {
	if binDir == "" {
		b.Skip("VMRUNNER_SKIP_INTEGRATION is set")
	}
	dir := b.TempDir()
	data := filepath.Join(dir, "data.bin")
	buf := make([]byte, 32<<20)
	_, _ = rand.Read(buf)
	if err := os.WriteFile(data, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	arches := map[string]string{"x86_64": "amd64", "arm64": "arm64"}
	progs := map[string]string{}
	for arch, goarch := range arches {
		progs[arch] = filepath.Join(dir, "noop-"+arch)
		build := exec.Command("go", "build", "-o", progs[arch], src)
		build.Env = append(os.Environ(), "GOARCH="+goarch, "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	transfer := func(arch string) (time.Duration, int64) {
		_, log := timedExec(b, "--kernel", "6.1", "--no-dir", "--log-level", "debug", "--file", data+":/tmp/data.bin", "--", progs[arch])
		var sent, prepared time.Time
		var n int64
		for _, line := range strings.Split(log, "\n") {
			m := planLog.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				b.Fatalf("log time %q: %v", m[1], err)
			}
			if m[2] == "plan sent" {
				sent = at
			} else {
				prepared = at
				n, _ = strconv.ParseInt(m[3], 10, 64)
			}
		}
		if sent.IsZero() || prepared.IsZero() || n < int64(len(buf)) {
			b.Fatalf("no plan sent / guest prepared with the file in the log:\n%s", log)
		}
		return prepared.Sub(sent), n
	}
	order := []string{"x86_64", "arm64"}
	for _, arch := range order {
		transfer(arch) // saves the snapshot if there is none
	}
	b.ResetTimer()
	took := map[string][]time.Duration{}
	var size int64
	for range b.N {
		for _, arch := range order {
			d, n := transfer(arch)
			took[arch] = append(took[arch], d)
			size = n
		}
	}
	for _, arch := range order {
		ds := took[arch]
		slices.Sort(ds)
		median, best := ds[len(ds)/2], ds[0]
		mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
		b.ReportMetric(mbps(median), "MB/s-"+arch)
		b.Logf("files into a restored 6.1/%s guest: %.1f MB/s median, %.1f MB/s best (%.1f MB; %d runs: %v)",
			arch, mbps(median), mbps(best), float64(size)/1e6, len(ds), ds)
	}
}
