package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// sampleRun writes a run directory the way `vmrunner run` lays it out:
// results.json with records of every status, a console.log per VM (with the
// escape sequences real consoles carry) and a verifier log artifact longer
// than the JUnit bound.
func sampleRun(t *testing.T) Run {
	t.Helper()
	dir := t.TempDir()
	src := func(pkg, ver string) *results.Source {
		return &results.Source{Type: "debian", Package: pkg, Version: ver, Suite: "bookworm",
			SHA256: strings.Repeat("ab", 32), URL: "http://deb.debian.org/debian/pool/main/l/linux/" + pkg + ".deb"}
	}
	btf := func(types int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"vmlinux_present":true,"types":%d,"found":["task_struct","sk_buff"],"missing":[],"module_btf":4,"config":{"BPF_SYSCALL":"y"}}`, types))
	}
	recs := []results.Record{
		{Kernel: "6.12", Arch: "x86_64", KernelRelease: "6.12.117+deb13-amd64", Source: src("linux-image-6.12.117+deb13-amd64-unsigned", "6.12.117-1"),
			Accel: "tcg", Check: "btf", Status: protocol.StatusPass, Message: "113790 types, 4 modules with BTF", DurationMS: 1200, BootMS: 2300,
			Details: btf(113790), Console: "6.12-x86_64/console.log"},
		{Kernel: "5.10", Arch: "x86_64", KernelRelease: "5.10.0-32-amd64", Source: src("linux-image-5.10.0-32-amd64-unsigned", "5.10.223-1"),
			Accel: "tcg", Check: "btf", Status: protocol.StatusFail, Message: "missing BTF types: vmrunner_no_such_type", DurationMS: 730, BootMS: 2100,
			Details: btf(82905), Console: "5.10-x86_64/console.log"},
		{Kernel: "6.1", Arch: "x86_64", KernelRelease: "6.1.0-50-amd64", Source: src("linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1"),
			Accel: "tcg", Check: "btf", Status: protocol.StatusPass, Message: "100643 types, 10 modules with BTF", DurationMS: 1000, BootMS: 2200,
			Details: btf(100643), Console: "6.1-x86_64/console.log"},
		{Kernel: "6.1", Arch: "x86_64", KernelRelease: "6.1.0-50-amd64", Source: src("linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1"),
			Accel: "tcg", Check: "verifier/probes/loop", Status: protocol.StatusFail, Message: "load program loop: permission denied: back-edge from insn 7 to 3",
			DurationMS: 90, BootMS: 2200, Details: json.RawMessage(`{"insns_processed":131072,"insns_limit":1000000,"object":"probes","program":"loop","verification_time_ns":1000000}`),
			Console: "6.1-x86_64/console.log", Artifacts: []string{"6.1-x86_64/verifier/probes/loop.log"}},
		{Kernel: "6.1", Arch: "arm64", KernelRelease: "6.1.0-50-cloud-arm64", Source: src("linux-image-6.1.0-50-cloud-arm64-unsigned", "6.1.176-1"),
			Accel: "tcg", Check: "btf", Status: protocol.StatusError, ErrorKind: results.KindBootTimeout,
			Message: "boot: no message from the guest agent within 1m0s", DurationMS: 60000,
			Splats:  []results.Splat{{Kind: "warning", Line: "WARNING: CPU: 0 PID: 1 at kernel/fork.c:1234 <copy_process>"}},
			Console: "6.1-arm64/console.log"},
		{Kernel: "6.1", Arch: "arm64", KernelRelease: "6.1.0-50-cloud-arm64", Source: src("linux-image-6.1.0-50-cloud-arm64-unsigned", "6.1.176-1"),
			Accel: "tcg", Check: "verifier/probes/loop", Status: protocol.StatusSkip, Message: "not run: the VM did not boot", Console: "6.1-arm64/console.log"},
	}
	files := map[string]string{
		"6.12-x86_64/console.log": "[    0.000000] Linux version 6.12.117+deb13-amd64\nvmrunner-agent: ready\n",
		"5.10-x86_64/console.log": "[    0.000000] Linux version 5.10.0-32-amd64\nvmrunner-agent: ready\n",
		"6.1-x86_64/console.log":  "[    0.000000] Linux version 6.1.0-50-amd64\nvmrunner-agent: ready\n",
	}
	var con strings.Builder
	for i := range 500 {
		fmt.Fprintf(&con, "[%5d.%06d] arm64 boot line %d\n", i/100, i, i)
	}
	con.WriteString("\x1b[0;32m[  OK  ]\x1b[0m serial \x00 byte \x07 bell\n")
	con.WriteString("[   59.999999] last console line before the timeout\n")
	files["6.1-arm64/console.log"] = con.String()
	var vlog strings.Builder
	for i := range 300 {
		fmt.Fprintf(&vlog, "%d: (b7) r%d = %d ; verifier line %d\n", i, i%10, i, i)
	}
	vlog.WriteString("back-edge from insn 7 to 3\nprocessed 131072 insns (limit 1000000)\n")
	files["6.1-x86_64/verifier/probes/loop.log"] = vlog.String()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep := results.Report{
		Run: results.RunInfo{ID: "20261126-021029-73f7", Matrix: "matrix.yaml", Version: "v0.1.0-test", Host: "ci-host",
			HostArch: "x86_64", Accel: "auto", Parallel: 2, Started: time.Date(2026, 11, 26, 2, 10, 29, 0, time.UTC),
			DurationMS: 68200, Finished: true, ExitCode: 3},
		Results: recs,
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}
