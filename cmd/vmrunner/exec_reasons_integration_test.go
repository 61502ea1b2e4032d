package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// libbpfTools fetches Debian's libbpf-tools package for the host's arch
// (apt-get download, from the mirror the integration tier uses) and
// returns the directory its tools are in.
func libbpfTools(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: Debian's libbpf-tools are fetched with apt-get download and dpkg-deb", tool)
		}
	}
	dir := t.TempDir()
	dl := exec.Command("apt-get", "download", "libbpf-tools")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download libbpf-tools: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "libbpf-tools_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download libbpf-tools gave %v", debs)
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	return filepath.Join(root, "usr", "sbin")
}

// execRecord is the part of a test/<program> record these tests read.
type execRecord struct {
	Kernel       string `json:"kernel"`
	Arch         string `json:"arch"`
	Check        string `json:"check"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	ReasonDetail string `json:"reason_detail"`
	ReasonFrom   string `json:"reason_from"`
	Hint         string `json:"hint"`
}

func execRecords(t *testing.T, out string) (map[string]execRecord, string) {
	t.Helper()
	var f struct {
		Results []execRecord `json:"results"`
	}
	dir := readLatest(t, out, &f)
	recs := map[string]execRecord{}
	for _, r := range f.Results {
		if strings.HasPrefix(r.Check, "test/") {
			recs[r.Kernel+"/"+r.Arch] = r
		}
	}
	return recs, dir
}

// TestExecReasons runs real failing eBPF programs through vmrunner exec on
// real kernels — Debian's libbpf-tools (C, libbpf, CO-RE) and a cilium/ebpf
// loader (testdata/loopload) — and requires the reason their output shows,
// labelled as read from it, with what to do, in results.json, on the
// terminal and in the Markdown report; a program that works has none.
func TestExecReasons(t *testing.T) {
	integration(t)
	tools := libbpfTools(t)

	t.Run("cachestat", func(t *testing.T) {
		// cachestat attaches fentry to account_page_dirtied, gone after 5.15.
		out := t.TempDir()
		res := vmrunnerCLI(t, "exec", "--kernel", "5.10", "--kernel", "6.1", "--no-dir", "--out", out, "--",
			filepath.Join(tools, "cachestat"), "1", "1")
		if res.code != 1 {
			t.Errorf("exit %d, want 1 (cachestat fails on 6.1)", res.code)
		}
		recs, dir := execRecords(t, out)
		if r := recs["5.10/x86_64"]; r.Status != "pass" || r.Reason != "" {
			t.Errorf("5.10: %+v, want a pass without a reason", r)
		}
		r := recs["6.1/x86_64"]
		if r.Status != "fail" || r.Reason != "ATTACH_TARGET_MISSING" || r.ReasonDetail != "account_page_dirtied" ||
			r.ReasonFrom != "program-output" || !strings.Contains(r.Hint, "attach to a function every kernel has") {
			t.Errorf("6.1: %+v, want fail ATTACH_TARGET_MISSING account_page_dirtied read from the program's output with a hint", r)
		}
		summary := regexp.MustCompile(`vmrunner exec: 6\.1/x86_64 \(\S+\): exit 1 in \S+: ATTACH_TARGET_MISSING \(account_page_dirtied\); hint, read from the program's output: attach to`)
		if !summary.MatchString(res.stderr) {
			t.Errorf("stderr has no summary line with the hint for 6.1:\n%s", res.stderr)
		}
		md := filepath.Join(t.TempDir(), "report.md")
		if rep := vmrunnerCLI(t, "report", "write", dir, "--markdown", md); rep.code != 0 {
			t.Fatalf("report write: exit %d", rep.code)
		}
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ATTACH_TARGET_MISSING: account_page_dirtied") ||
			!strings.Contains(string(b), "hint, read from the program&#39;s output: attach to a function every kernel has") {
			t.Errorf("the Markdown report lacks 6.1's reason and hint:\n%s", b)
		}
	})

	t.Run("biolatency", func(t *testing.T) {
		// On 5.10 the tp_btf program reads an argument the tracepoint
		// does not have there: libbpf prints the verifier's log.
		out := t.TempDir()
		res := vmrunnerCLI(t, "exec", "--kernel", "5.10", "--no-dir", "--out", out, "--", filepath.Join(tools, "biolatency"), "1", "1")
		if res.code != 1 {
			t.Errorf("exit %d, want biolatency's 1", res.code)
		}
		recs, _ := execRecords(t, out)
		r := recs["5.10/x86_64"]
		if r.Reason != "VERIFIER_REJECTED" || r.ReasonDetail != "invalid bpf_context access off=8 size=8" || r.ReasonFrom != "program-output" {
			t.Errorf("5.10: %+v, want VERIFIER_REJECTED at the verifier's line", r)
		}
		// One VM: the program's output, then one line with the hint.
		if !strings.Contains(res.stderr, "-- END PROG LOAD LOG --") ||
			!strings.Contains(res.stderr, "vmrunner exec: 5.10/x86_64: VERIFIER_REJECTED (invalid bpf_context access off=8 size=8); hint, read from the program's output: fix the program") {
			t.Errorf("stderr lacks the program's log or the hint line:\n%s", res.stderr)
		}
	})

	t.Run("cilium-ebpf-arm64", func(t *testing.T) {
		// A callback (BPF-to-BPF call) for bpf_loop: 5.10 refuses the
		// program's func_info, 6.1 loads it.
		loader := filepath.Join(t.TempDir(), "loopload")
		build := exec.Command("go", "build", "-o", loader, "../../testdata/loopload")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build loopload: %v\n%s", err, b)
		}
		out := t.TempDir()
		res := vmrunnerCLI(t, "exec", "--kernel", "5.10", "--kernel", "6.1", "--no-dir", "--out", out, "--", loader)
		if res.code != 1 {
			t.Errorf("exit %d, want 1", res.code)
		}
		recs, _ := execRecords(t, out)
		if r := recs["6.1/arm64"]; r.Status != "pass" || r.Reason != "" {
			t.Errorf("6.1: %+v, want a pass", r)
		}
		r := recs["5.10/arm64"]
		if r.Reason != "BPF_CALLS_UNSUPPORTED" || !strings.Contains(r.ReasonDetail, "func_info") || r.ReasonFrom != "program-output" {
			t.Errorf("5.10: %+v, want BPF_CALLS_UNSUPPORTED from cilium/ebpf's error", r)
		}
		if b, _ := json.Marshal(r); !strings.Contains(res.stderr, "BPF_CALLS_UNSUPPORTED") {
			t.Errorf("stderr lacks the reason of %s:\n%s", b, res.stderr)
		}
	})
}
