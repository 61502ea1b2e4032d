package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteHTML(t *testing.T) {
	run := sampleRun(t)
	run.Results[1].Message = `missing <script>alert("x")</script> types`
	run.Results[2].Artifacts = []string{"../../etc/passwd", "/etc/passwd", "6.1-x86_64/a file#1.log", "javascript:alert(1)"}
	tests := []struct {
		name        string
		linkBase    string
		contains    []string
		notContains []string
	}{
		{
			name: "in the run directory",
			contains: []string{
				`<td class="cell st-fail" id="c0-0" data-status="fail" data-target="5.10/x86_64" data-check="btf"`,
				`<td class="cell st-error" id="c0-1" data-status="error" data-target="6.1/arm64"`,
				`<td class="cell st-pass" id="c0-2"`, `<td class="cell st-pass" id="c0-3"`,
				`<td class="cell st-none" id="c1-0"`, `<td class="cell st-skip" id="c1-1"`, `<td class="cell st-fail" id="c1-2"`,
				`<section class="detail" id="d-c1-2" hidden>`,
				`<a href="6.1-x86_64/console.log">console.log</a>`,
				`<a href="6.1-x86_64/verifier/probes/loop.log">6.1-x86_64/verifier/probes/loop.log</a>`,
				`<a href="6.1-x86_64/a%20file%231.log">`,
				`missing &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; types`,
				`&#34;insns_processed&#34;: 131072`,
				`last console line before the timeout`, // the error's console tail
				`<span class="badge b-fail">2 fail</span>`, `<span class="badge b-error">1 error</span>`,
				`1m8.2s`, `ci-host`, `20261126-021029-73f7`,
			},
			notContains: []string{`<script>alert`, `etc/passwd"`, `href="javascript`, `href="/`, `<link `, `src="http`},
		},
		{
			name:     "elsewhere",
			linkBase: "../runs/r1",
			contains: []string{`<a href="../runs/r1/6.1-x86_64/console.log">console.log</a>`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteHTML(&b, run, tt.linkBase); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(b.String(), s) {
					t.Errorf("page lacks %s", s)
				}
			}
			for _, s := range tt.notContains {
				if strings.Contains(b.String(), s) {
					t.Errorf("page has %s", s)
				}
			}
		})
	}
}

func TestLinkBaseFor(t *testing.T) {
	tests := []struct{ page, run, want string }{
		{"/r/20261126/report.html", "/r/20261126", ""},
		{"/tmp/out/report.html", "/r/20261126", "../../r/20261126"},
		{"/r/report.html", "/r/20261126", "20261126"},
	}
	for _, tt := range tests {
		if got, err := linkBaseFor(tt.page, tt.run); err != nil || got != tt.want {
			t.Errorf("linkBaseFor(%q, %q) = %q, %v; want %q", tt.page, tt.run, got, err, tt.want)
		}
	}
}

// chromium finds Debian's headless-capable Chromium. Outside CI a missing
// browser skips the test; in CI (CI=true) it fails, because CI installs it
// (scripts/install-test-deps.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed: CI must run scripts/install-test-deps.sh")
	}
	t.Skip("chromium not installed: run scripts/install-test-deps.sh (apt-get install chromium) to test the page in a browser")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	// Chromium forks helpers: kill the whole group on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestHTMLInChromium renders the page in a real headless Chromium and reads
// the DOM after its script ran: every cell present with its status class,
// made clickable, and the first failure opened.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	run := sampleRun(t)
	page := filepath.Join(run.Dir, HTMLName)
	if err := WriteHTMLFile(page, run); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page
	start := time.Now()
	dom := string(runChromium(t, bin, "--dump-dom", url))
	t.Logf("chromium --dump-dom: %d bytes in %s", len(dom), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(dom, `data-ready="true"`) {
		t.Fatalf("the page's script did not run to the end:\n%s", dom)
	}
	cellRE := regexp.MustCompile(`<td class="([^"]*)" id="(c\d+-\d+)" data-status="([^"]*)"`)
	got := map[string]string{}
	for _, m := range cellRE.FindAllStringSubmatch(dom, -1) {
		got[m[2]] = m[1]
	}
	want := map[string]string{
		"c0-0": "cell st-fail clickable selected", // 5.10/x86_64 btf, the first problem: opened
		"c0-1": "cell st-error clickable",
		"c0-2": "cell st-pass clickable",
		"c0-3": "cell st-pass clickable",
		"c1-0": "cell st-none",
		"c1-1": "cell st-skip clickable",
		"c1-2": "cell st-fail clickable",
		"c1-3": "cell st-none",
	}
	for id, class := range want {
		if got[id] != class {
			t.Errorf("cell %s: class %q, want %q", id, got[id], class)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d cells rendered, want %d", len(got), len(want))
	}
	if !strings.Contains(dom, `<section class="detail" id="d-c0-0">`) {
		t.Errorf("the first failure's detail is not shown")
	}
	if n := strings.Count(dom, `class="detail" id="d-`); n != 6 {
		t.Errorf("%d detail sections, want one per record (6)", n)
	}

	// The verifier heat map: one program, its 6.1 cell at 13.1% of the
	// limit, coloured as under 25%; the kernels without it are empty.
	heatRE := regexp.MustCompile(`<tr><th scope="row">probes/loop</th>(<td[^>]*>[^<]*</td>)+</tr>`)
	row := heatRE.FindString(dom)
	if !strings.Contains(dom, `<table class="heat">`) || !strings.Contains(row, `<td class="h2" title="probes/loop on 6.1/x86_64: 131072 insns processed, 13.11% of the limit`) ||
		!strings.Contains(row, `>13.1%</td>`) || strings.Count(row, `<td class="none"`) != 3 {
		t.Errorf("heat map row %q", row)
	}

	// A cell named in the URL is opened instead.
	dom = string(runChromium(t, bin, "--dump-dom", url+"#c1-2"))
	if !strings.Contains(dom, `id="c1-2" data-status="fail"`) || !strings.Contains(dom, `<section class="detail" id="d-c1-2">`) ||
		!strings.Contains(dom, `<section class="detail" id="d-c0-0" hidden="">`) {
		t.Errorf("#c1-2 did not open the verifier cell")
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	runChromium(t, bin, "--screenshot="+shot, url)
	b, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10000 {
		t.Errorf("screenshot: %d bytes, err %v", len(b), err)
	}
	if dir := os.Getenv("VMRUNNER_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "report.png"), b, 0o644)
	}
}
