package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReportsFromRealRuns boots one real VM twice (Debian 6.1 on x86_64):
// the first run writes --junit and --html, both runs compare clean, and a
// copy of the second with its verdict flipped compares as a regression.
func TestReportsFromRealRuns(t *testing.T) {
	integration(t)
	out := t.TempDir()
	junit := filepath.Join(t.TempDir(), "junit.xml")
	page := filepath.Join(t.TempDir(), "report.html")
	res := vmrunnerCLIEnv(t, []string{"GITHUB_ACTIONS="}, "run", "../../matrix.yaml", "--kernel", "6.1", "--arch", "x86_64",
		"--out", out, "--junit", junit, "--html", page)
	r, dir1 := readResults(t, out)
	if res.code != r.Run.ExitCode || res.code > 1 {
		t.Fatalf("exit code %d (results.json says %d), want 0 or 1", res.code, r.Run.ExitCode)
	}
	want := map[string]string{} // check → status
	btf := -1
	for i, rec := range r.Results {
		want[rec.Check] = rec.Status
		if rec.Check == "btf" {
			btf = i
		}
	}
	if btf < 0 || r.Results[btf].Status != "pass" {
		t.Fatalf("no passing btf record: %+v", r.Results)
	}
	rec := r.Results[btf]
	arts := artifactsOf(t, dir1)

	// JUnit: one suite for the VM, with the kernel's identity, one case per
	// record with the record's outcome.
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name       string `xml:"name,attr"`
			Tests      int    `xml:"tests,attr"`
			Properties []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Cases []struct {
				Classname string    `xml:"classname,attr"`
				Name      string    `xml:"name,attr"`
				Time      string    `xml:"time,attr"`
				Failure   *struct{} `xml:"failure"`
				Error     *struct{} `xml:"error"`
				Skipped   *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", junit, err)
	}
	if doc.Tests != len(r.Results) || len(doc.Suites) != 1 || doc.Suites[0].Name != "6.1/x86_64" || len(doc.Suites[0].Cases) != len(r.Results) {
		t.Fatalf("junit does not hold one suite with %d cases:\n%s", len(r.Results), b)
	}
	s := doc.Suites[0]
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["kernel_release"] != rec.KernelRelease || props["source_sha256"] != rec.Source.SHA256 || props["source_package"] != rec.Source.Package {
		t.Errorf("junit properties %v do not name the kernel of results.json (%s, %s)", props, rec.KernelRelease, rec.Source.Package)
	}
	for _, c := range s.Cases {
		got := "pass"
		switch {
		case c.Failure != nil:
			got = "fail"
		case c.Error != nil:
			got = "error"
		case c.Skipped != nil:
			got = "skip"
		}
		if c.Classname != "6.1/x86_64" || got != want[c.Name] {
			t.Errorf("junit testcase %s %s: %s, results.json says %q", c.Classname, c.Name, got, want[c.Name])
		}
	}

	// HTML: report.html in the run directory and the --html copy, each with a
	// passing btf cell, a detail per record, and links that lead to the real
	// console log and artifacts.
	for _, p := range []string{filepath.Join(dir1, "report.html"), page} {
		h, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`<td class="cell st-pass" id="c\d+-0" data-status="pass" data-target="6.1/x86_64" data-check="btf"`).Match(h) {
			t.Errorf("%s: no passing btf cell", p)
		}
		if n := strings.Count(string(h), `<section class="detail"`); n != len(r.Results) {
			t.Errorf("%s: %d detail sections, want %d", p, n, len(r.Results))
		}
		if !strings.Contains(string(h), rec.KernelRelease) {
			t.Errorf("%s: kernel release %s missing", p, rec.KernelRelease)
		}
		links := regexp.MustCompile(`<a href="([^"]+)">([^<]+)</a>`).FindAllSubmatch(h, -1)
		seen := map[string]bool{}
		for _, m := range links {
			u, err := url.PathUnescape(string(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(filepath.Dir(p), u)); err != nil || fi.Size() == 0 {
				t.Errorf("%s: link %q does not lead to a file: %v", p, m[1], err)
			}
			seen[string(m[2])] = true
		}
		if !seen["console.log"] {
			t.Errorf("%s: no console.log link", p)
		}
		for _, a := range arts {
			if !seen[a] {
				t.Errorf("%s: no link to artifact %s", p, a)
			}
		}
	}

	// A second real run compares clean with the first.
	out2 := t.TempDir()
	if res := vmrunnerCLI(t, "run", "../../matrix.yaml", "--kernel", "6.1", "--arch", "x86_64", "--out", out2); res.code != 0 {
		t.Fatalf("second run: exit code %d", res.code)
	}
	_, dir2 := readResults(t, out2)
	res = vmrunnerCLI(t, "report", "compare", dir1, dir2)
	if res.code != 0 || !strings.Contains(res.stdout, "regressions: 0") {
		t.Errorf("compare of two real runs: exit %d, want 0", res.code)
	}

	// The second run's results with its verdict flipped: a regression.
	raw, err := os.ReadFile(filepath.Join(dir2, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doctored map[string]any
	if err := json.Unmarshal(raw, &doctored); err != nil {
		t.Fatal(err)
	}
	for _, x := range doctored["results"].([]any) {
		if x := x.(map[string]any); x["check"] == "btf" {
			x["status"], x["message"] = "fail", "missing BTF types: sock"
		}
	}
	raw, _ = json.Marshal(doctored)
	flipped := writeFile(t, "results.json", string(raw))
	res = vmrunnerCLI(t, "report", "compare", dir1, flipped)
	if res.code != 1 || !strings.Contains(res.stdout, "6.1/x86_64 btf: pass → fail MISSING_BTF  REGRESSION") {
		t.Errorf("compare with a flipped verdict: exit %d, want 1 and the regression named", res.code)
	}
	if res := vmrunnerCLI(t, "report", "show", dir2); res.code != 0 || !strings.Contains(res.stdout, rec.KernelRelease) {
		t.Errorf("report show: exit %d", res.code)
	}
}

// artifactsOf lists the artifacts results.json names, run-relative.
func artifactsOf(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Results []struct {
			Artifacts []string `json:"artifacts"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range r.Results {
		out = append(out, rec.Artifacts...)
	}
	return out
}

// TestKilledRunReportedIncomplete kills vmrunner (SIGKILL: nothing of its
// own runs) while its only VM is in a check that hangs: results.json says
// finished false with no records, and report show, write and compare all
// say the run is incomplete and name the VM instead of reading it as clean.
func TestKilledRunReportedIncomplete(t *testing.T) {
	integration(t)
	m := writeFile(t, "matrix.yaml", `kernels:
  - name: "6.1"
    arch: x86_64
    source: {debian: {suite: bookworm}}
checks:
  - selftest: {action: hang, timeout: 10m}
`)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "run", m, "--out", out)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The run is under way once QEMU runs the VM (not `qemu -version`, which
	// vmrunner may run first to identify it): the VM's only check hangs, so
	// it will have no record until vmrunner is gone. Its socket directory
	// is on its command line (-qmp unix:DIR/qmp,...).
	var qemus []int
	var sockDir string
	qmpArg := regexp.MustCompile(`unix:(\S+)/qmp,`)
	for deadline := time.Now().Add(5 * time.Minute); sockDir == "" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		for _, pid := range childrenNamed(cmd.Process.Pid, "qemu-system") {
			argv, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
			if m := qmpArg.FindSubmatch(bytes.ReplaceAll(argv, []byte{0}, []byte{' '})); m != nil {
				qemus, sockDir = []int{pid}, string(m[1])
			}
		}
	}
	if len(qemus) == 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("no QEMU started; stderr:\n%s", se.String())
	}
	// Killed while the check runs (the agent has its plan).
	waitConsole(t, out, "vmrunner-agent: plan:")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// QEMU dies with vmrunner (PR_SET_PDEATHSIG): wait for it to go.
	for _, pid := range qemus {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
			if err != nil || strings.Contains(string(stat), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("QEMU pid %d outlived the killed vmrunner", pid)
				break
			}
		}
	}
	// Nor did its sockets: each went once connected.
	if _, err := os.Stat(sockDir); !errors.Is(err, fs.ErrNotExist) {
		entries, _ := os.ReadDir(sockDir)
		t.Errorf("socket directory %s outlived the killed vmrunner (%v): %v", sockDir, err, entries)
	}
	r, dir := readResults(t, out)
	if r.Run.Finished || len(r.Results) != 0 {
		t.Fatalf("results.json after SIGKILL: finished=%v, %d records", r.Run.Finished, len(r.Results))
	}

	note := "no results for 1 of 1 VMs: 6.1/x86_64"
	show := vmrunnerCLI(t, "report", "show", dir)
	if show.code != 3 || !strings.Contains(show.stdout, "INCOMPLETE RUN: ") || !strings.Contains(show.stdout, note) ||
		!regexp.MustCompile(`(?m)^6\.1 +x86_64 +- +vm +error \(incomplete\)`).MatchString(show.stdout) {
		t.Errorf("report show: exit %d, want 3, the banner and a row for the VM", show.code)
	}

	junit := filepath.Join(t.TempDir(), "junit.xml")
	page := filepath.Join(t.TempDir(), "report.html")
	write := vmrunnerCLI(t, "report", "write", dir, "--junit", junit, "--html", page)
	if write.code != 0 || !strings.Contains(write.stderr, "is an incomplete run") || !strings.Contains(write.stderr, note) {
		t.Errorf("report write: exit %d, want 0 and the note on stderr", write.code)
	}
	var doc struct {
		Errors int `xml:"errors,attr"`
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name  string `xml:"name,attr"`
				Error *struct {
					Type string `xml:"type,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit: %v", err)
	}
	errs := map[string]string{} // suite/case → error type
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Error != nil {
				errs[s.Name+" "+c.Name] = c.Error.Type
			}
		}
	}
	if doc.Errors != 2 || errs["6.1/x86_64 vm"] != "incomplete" || errs["vmrunner finished"] != "incomplete" {
		t.Errorf("junit: %d errors %v, want the VM and vmrunner/finished as incomplete", doc.Errors, errs)
	}
	if html, _ := os.ReadFile(page); !strings.Contains(string(html), `id="incomplete"`) || !strings.Contains(string(html), note) {
		t.Errorf("report.html has no incomplete banner naming the VM")
	}

	cmp := vmrunnerCLI(t, "report", "compare", dir, dir)
	if cmp.code != 1 || !strings.Contains(cmp.stdout, "new run incomplete: ") || !strings.Contains(cmp.stdout, note) {
		t.Errorf("report compare with an incomplete new run: exit %d, want 1 naming the VM", cmp.code)
	}
}
