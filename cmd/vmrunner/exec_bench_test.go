package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
