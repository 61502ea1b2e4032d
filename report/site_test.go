package report

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// The default matrix's targets, as the synthetic nights run them.
var siteTargets = []results.Target{
	{Kernel: "5.10", Arch: "x86_64"}, {Kernel: "5.10", Arch: "arm64"}, {Kernel: "6.1", Arch: "x86_64"},
	{Kernel: "6.1", Arch: "arm64"}, {Kernel: "6.12", Arch: "x86_64"}, {Kernel: "6.12", Arch: "arm64"},
}

const siteCommitURL = "https://github.com/vmrunner/vmrunner/commit/"

// syntheticNight writes night i of 30 as `vmrunner run` would lay it out,
// with what the test then looks for on the site:
//   - from night 12 the 6.1/arm64 kernel is a new release and its features
//     check fails (still red at the end);
//   - nights 20–24 ran vmrunner bbbbbbb (before: aaaaaaa), whose
//     verifier/probes/big is rejected on 5.10/x86_64; 25 on it passes again;
//   - probes/big's instructions grow from 40% of the limit on 5.10;
//   - night 27's 6.12/x86_64 VM timed out while booting (an error);
//   - night 29 did not finish: 6.12/arm64 has no records.
func syntheticNight(t *testing.T, parent string, i int) string {
	t.Helper()
	started := time.Date(2026, 12, 9, 3, 17, 0, 0, time.UTC).AddDate(0, 0, i)
	id := started.Format("20060102-150405-") + fmt.Sprintf("%04x", i*7919%65536)
	dir := filepath.Join(parent, id)
	version := "v0.4.0-10-gaaaaaaa"
	if i >= 20 && i < 25 {
		version = "v0.4.0-11-gbbbbbbb"
	} else if i >= 25 {
		version = "v0.4.0-12-gccccccc"
	}
	rep := results.Report{Run: results.RunInfo{ID: id, Matrix: "matrix.yaml", Version: version, Host: "runner", HostArch: "x86_64",
		Accel: "auto", Parallel: 2, Started: started,
		DurationMS: 60000, Finished: i != 29, Targets: siteTargets}}
	for j, tg := range siteTargets {
		if i == 29 && tg.String() == "6.12/arm64" {
			continue
		}
		flavour := "amd64"
		if tg.Arch == "arm64" {
			flavour = "cloud-arm64"
		}
		abi := map[string]string{"5.10": "5.10.0-32", "6.1": "6.1.0-49", "6.12": "6.12.57+deb13"}[tg.Kernel]
		if tg.String() == "6.1/arm64" && i >= 12 {
			abi = "6.1.0-50"
		}
		release := abi + "-" + flavour
		console := tg.Kernel + "-" + tg.Arch + "/console.log"
		writeTestFile(t, filepath.Join(dir, console), "Linux version "+release+"\nvmrunner-agent: ready\n")
		rec := func(check string, st protocol.Status, ms int64, details string) results.Record {
			r := results.Record{Kernel: tg.Kernel, Arch: tg.Arch, KernelRelease: release, Accel: "kvm", Check: check, Status: st,
				DurationMS: ms, Console: console, BootMS: 900}
			if details != "" {
				r.Details = json.RawMessage(details)
			}
			if st != protocol.StatusPass {
				r.Message = check + " " + string(st)
			}
			return r
		}
		if i == 27 && tg.String() == "6.12/x86_64" {
			r := rec(results.VMCheck, protocol.StatusError, 120000, "")
			r.ErrorKind, r.Reason = results.KindBootTimeout, protocol.ReasonBootTimeout
			rep.Results = append(rep.Results, r)
			continue
		}
		features := protocol.StatusPass
		if tg.String() == "6.1/arm64" && i >= 12 {
			features = protocol.StatusFail
		}
		bigInsns := 200_000 + j*20_000 + i*8_000
		if tg.String() == "5.10/x86_64" {
			bigInsns = 400_000 + i*19_000
		}
		big := protocol.StatusPass
		if tg.String() == "5.10/x86_64" && i >= 20 && i < 25 {
			big = protocol.StatusFail
		}
		art := tg.Kernel + "-" + tg.Arch + "/verifier/probes/big.log"
		writeTestFile(t, filepath.Join(dir, art), fmt.Sprintf("processed %d insns (limit 1000000)\n", bigInsns))
		bigRec := rec("verifier/probes/big", big, 40+int64(i), fmt.Sprintf(`{"object":"probes","program":"big","insns_processed":%d,"insns_limit":1000000}`, bigInsns))
		bigRec.Artifacts = []string{art}
		if big == protocol.StatusFail {
			bigRec.Reason = protocol.ReasonVerifierRejected
		}
		rep.Results = append(rep.Results,
			rec("btf", protocol.StatusPass, 800+int64(i*10), `{"types":100000}`),
			rec("features", features, 1500, ""),
			bigRec,
			rec("verifier/probes/loop", protocol.StatusPass, 20, fmt.Sprintf(`{"object":"probes","program":"loop","insns_processed":%d,"insns_limit":1000000}`, 600+j)),
		)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "results.json"), string(b))
	return dir
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// realRun is the results.json of a real run of the default matrix (make
// build; bin/vmrunner run matrix.yaml, 2026-12-08, 54 records under TCG
// and KVM-less QEMU 7.2), without its console logs and artifacts.
func realRun(t *testing.T, dir string) Run {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "site", "default-matrix.results.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "results.json"), string(b))
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func siteRuns(t *testing.T, n int) []Run {
	t.Helper()
	parent := t.TempDir()
	var runs []Run
	for i := range n {
		run, err := Load(syntheticNight(t, parent, i))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

func TestWriteSite(t *testing.T) {
	runs := siteRuns(t, 30)
	real := realRun(t, filepath.Join(t.TempDir(), "real"))
	runs = append(runs, real)
	out := filepath.Join(t.TempDir(), "site")
	st, err := WriteSite(out, runs, SiteOptions{CommitURL: siteCommitURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("31 nights: index.html %d bytes, site %d bytes in %d files", st.IndexSize, st.TotalSize, st.Files)
	index := readTestFile(t, filepath.Join(out, SiteIndex))

	rows := regexp.MustCompile(`(?s)<tr><th scope="row"><a href="nights/([^/]+)/report.html">.*?</tr>`).FindAllStringSubmatch(index, -1)
	if len(rows) != 31 {
		t.Fatalf("%d history rows, want 31", len(rows))
	}
	if rows[0][1] != runs[29].Run.ID || rows[30][1] != real.Run.ID {
		t.Errorf("history rows not newest first: first %s, last %s", rows[0][1], rows[30][1])
	}
	cellRE := regexp.MustCompile(`<td class="c st-([a-z]+)" title="[^"]*"><a href="[^"]*">([^<]*)</a></td>`)
	cells := func(row string) string {
		var out []string
		for _, m := range cellRE.FindAllStringSubmatch(row, -1) {
			out = append(out, m[1]+" "+m[2])
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		night int // index in runs
		want  string
	}{
		{-1, "pass pass,pass pass,pass pass,pass pass,pass pass,pass pass"}, // the real run, the first night; targets in kernel then arch order
		{29, "pass pass,pass pass,fail 1 fail,pass pass,error 1 error,pass pass"},
		{27, "pass pass,pass pass,fail 1 fail,pass pass,pass pass,error 1 error"},
		{22, "pass pass,fail 1 fail,fail 1 fail,pass pass,pass pass,pass pass"},
		{11, "pass pass,pass pass,pass pass,pass pass,pass pass,pass pass"},
	} {
		row := rows[29-tt.night][0]
		if got := cells(row); got != tt.want {
			t.Errorf("night %d: cells %s\nwant         %s", tt.night, got, tt.want)
		}
	}
	if !strings.Contains(index, `<th>5.10<br><small>arm64</small></th><th>5.10<br><small>x86_64</small></th>`) {
		t.Errorf("history header is not in kernel then arch order")
	}

	// First bad nights: the three red runs, newest first, each with what
	// changed.
	fb := regexp.MustCompile(`(?s)<table class="firstbad">.*?</table>`).FindString(index)
	fbRows := regexp.MustCompile(`(?s)<tr><td class="mono">.*?</tr>`).FindAllString(fb, -1)
	if len(fbRows) != 4 {
		t.Fatalf("%d first-bad rows, want 4 (6.12/arm64 vm, 6.12/x86_64 vm, probes/big, features):\n%s", len(fbRows), fb)
	}
	nightLabel := func(i int) string { return runs[i].Run.Started.Format("2006-01-02 15:04") }
	for i, want := range [][]string{
		{`>vm<`, `6.12/arm64`, nightLabel(29), `error INCOMPLETE`, nightLabel(28), "v0.4.0-12-gccccccc</a> (same)", `<td class="mono">not recorded</td>`, "still red"},
		{`>vm<`, `6.12/x86_64`, nightLabel(27), `error BOOT_TIMEOUT`, nightLabel(26), "6.12.57&#43;deb13-amd64 (same)", "green again " + nightLabel(28)},
		{`verifier/probes/big`, `5.10/x86_64`, nightLabel(20), `fail VERIFIER_REJECTED`, nightLabel(19),
			`<td class="mono changed"><a href="` + siteCommitURL + `aaaaaaa">v0.4.0-10-gaaaaaaa</a> → <a href="` + siteCommitURL + `bbbbbbb">v0.4.0-11-gbbbbbbb</a>`,
			`5.10.0-32-amd64 (same)`, `green again ` + nightLabel(25)},
		{`features`, `6.1/arm64`, nightLabel(12), `fail`, nightLabel(11),
			`<td class="mono changed">6.1.0-49-cloud-arm64 → 6.1.0-50-cloud-arm64</td>`, "v0.4.0-10-gaaaaaaa</a> (same)", "still red"},
	} {
		for _, s := range want {
			if !strings.Contains(fbRows[i], s) {
				t.Errorf("first-bad row %d lacks %q:\n%s", i, s, fbRows[i])
			}
		}
	}

	// Trend lines: two charts per check, one per verifier program.
	checksWant := []string{"btf", "features", "verifier/probes", "verifier/probes/big", "verifier/probes/bounded_loop", "verifier/probes/core_task_pid",
		"verifier/probes/large_program", "verifier/probes/loop", "verifier/probes/rejected_stack_oob", "verifier/probes/ringbuf_output",
		"verifier/probes/uses_bpf_loop", "vm"}
	if n := strings.Count(index, `<svg class="chart"`); n != 2*len(checksWant)+8 {
		t.Errorf("%d charts, want %d (two per check, one per program)", n, 2*len(checksWant)+8)
	}
	for _, c := range checksWant {
		if !strings.Contains(index, `<title>`+c+`: pass rate per night</title>`) {
			t.Errorf("no pass-rate chart for %s", c)
		}
	}
	// The last night's pass rates: features failed on one of the five
	// targets that ran; the vm check passed on the five with records of
	// their own and not on 6.12/arm64, which the unfinished run lacks.
	checksTable := regexp.MustCompile(`(?s)<table class="checks">.*?</table>`).FindString(index)
	for check, want := range map[string]string{"features": "80%", "vm": "83%", "btf": "100%"} {
		row := regexp.MustCompile(`(?s)<tr><td class="mono">` + regexp.QuoteMeta(check) + `</td>.*?</tr>`).FindString(checksTable)
		if !strings.Contains(row, `</svg></td><td>`+want+`</td>`) {
			t.Errorf("%s: last pass rate is not %s:\n%.300s", check, want, row)
		}
	}
	// probes/big crosses the limit on 5.10/x86_64 at night 32: its chart's
	// scale reaches 100% and draws the limit.
	big := regexp.MustCompile(`(?s)<td class="mono">probes/big</td>.*?</tr>`).FindString(index)
	if !strings.Contains(big, `class="limit"`) || !strings.Contains(big, `>100%</text>`) || !strings.Contains(big, "95.10% (5.10/x86_64 "+nightLabel(29)+")") {
		t.Errorf("probes/big's complexity row:\n%s", big)
	}
	if strings.Count(big, `<path class="line s`) != 6 {
		t.Errorf("probes/big: %d lines, want one per target (6)", strings.Count(big, `<path class="line s`))
	}
	if strings.Contains(index, "<script") {
		t.Errorf("the index has a script: it must read without JavaScript")
	}

	// The real run's copy names no console: its files were not given.
	copied, err := results.ReadReport(filepath.Join(out, SiteNightsDir, real.Run.ID, "results.json"))
	if err != nil || len(copied.Results) != 54 || copied.Results[0].Console != "" || len(copied.Results[3].Artifacts) != 0 {
		t.Errorf("real run's copy: %d records, err %v", len(copied.Results), err)
	}
	checkSiteLinks(t, out)

	// The site is the next site's input: its nights, rewritten in place.
	nights, _ := filepath.Glob(filepath.Join(out, SiteNightsDir, "*"))
	var again []Run
	for _, d := range nights {
		r, err := Load(d)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, r)
	}
	st2, err := WriteSite(out, again, SiteOptions{Keep: 10, CommitURL: siteCommitURL})
	if err != nil {
		t.Fatal(err)
	}
	if st2.Nights != 10 || len(st2.Dropped) != 21 || st2.Dropped[0] != real.Run.ID {
		t.Errorf("--keep 10: %d nights, dropped %v", st2.Nights, st2.Dropped)
	}
	if _, err := os.Stat(filepath.Join(out, SiteNightsDir, runs[0].Run.ID)); !os.IsNotExist(err) {
		t.Errorf("a dropped night's directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, SiteNightsDir, runs[29].Run.ID, "6.1-arm64", "console.log")); err != nil {
		t.Errorf("a kept night lost its console log: %v", err)
	}
	checkSiteLinks(t, out)
}

func TestWriteSiteRefuses(t *testing.T) {
	runs := siteRuns(t, 2)
	notSite := t.TempDir()
	writeTestFile(t, filepath.Join(notSite, "keep.txt"), "mine")
	dup := runs[0]
	bad := runs[1]
	bad.Run.ID = "../x"
	for _, tt := range []struct {
		name string
		out  string
		runs []Run
		want string
	}{
		{"not a site", notSite, runs, "exists and is not a site vmrunner wrote (no .vmrunner-site): give a new directory"},
		{"twice", filepath.Join(t.TempDir(), "s"), []Run{runs[0], dup}, "run " + dup.Run.ID + " is given twice"},
		{"bad id", filepath.Join(t.TempDir(), "s"), []Run{bad}, `run id "../x" is not a plain name`},
		{"none", filepath.Join(t.TempDir(), "s"), nil, "write site: no runs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := WriteSite(tt.out, tt.runs, SiteOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	if readTestFile(t, filepath.Join(notSite, "keep.txt")) != "mine" {
		t.Errorf("a directory that is not a site was touched")
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkSiteLinks follows every href and src of every page of the site: a
// relative one must name a file of the site, an absolute one a commit.
func checkSiteLinks(t *testing.T, dir string) {
	t.Helper()
	linkRE := regexp.MustCompile(`(?:href|src)="([^"]*)"`)
	pages, links := 0, 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		pages++
		for _, m := range linkRE.FindAllStringSubmatch(readTestFile(t, p), -1) {
			links++
			ref := strings.ReplaceAll(m[1], "&amp;", "&")
			if strings.HasPrefix(ref, siteCommitURL) {
				continue
			}
			u, err := url.Parse(ref)
			if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/") {
				t.Errorf("%s: link %q leaves the site", p, ref)
				continue
			}
			if u.Path == "" {
				continue // #fragment on the same page
			}
			target := filepath.Join(filepath.Dir(p), filepath.FromSlash(u.Path))
			if rel, err := filepath.Rel(dir, target); err != nil || !filepath.IsLocal(rel) {
				t.Errorf("%s: link %q leaves the site", p, ref)
			} else if fi, err := os.Stat(target); err != nil || fi.IsDir() {
				t.Errorf("%s: link %q does not resolve: %v", p, ref, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pages, %d links, all resolving", pages, links)
}

// TestSiteInChromium renders the site of 30 synthetic nights and a real run
// in headless Chromium and looks at the screenshot's pixels: the history
// grid's pass, fail and error cells and the trend lines' colours are
// there. VMRUNNER_SCREENSHOT_DIR keeps the PNG to look at.
func TestSiteInChromium(t *testing.T) {
	bin := chromium(t)
	runs := append(siteRuns(t, 30), realRun(t, filepath.Join(t.TempDir(), "real")))
	out := filepath.Join(t.TempDir(), "site")
	if _, err := WriteSite(out, runs, SiteOptions{CommitURL: siteCommitURL}); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.Join(out, SiteIndex)
	dom := string(runChromium(t, bin, "--dump-dom", url))
	if n := strings.Count(dom, `<svg class="chart"`); n != 32 {
		t.Errorf("the browser's DOM has %d charts, want 32", n)
	}
	if n := strings.Count(dom, `<td class="c st-`); n != 31*6 {
		t.Errorf("the browser's DOM has %d history cells, want %d", n, 31*6)
	}
	// The whole page in one screenshot: the grid, the trend lines and the
	// verifier's lines, each in its colour.
	shot := filepath.Join(t.TempDir(), "site.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,3000", url)
	img := decodePNG(t, shot)
	for _, c := range []struct {
		what string
		rgb  [3]uint8
	}{
		{"pass cell", [3]uint8{0xda, 0xfb, 0xe1}}, {"fail cell", [3]uint8{0xff, 0xeb, 0xe9}}, {"error cell", [3]uint8{0xff, 0xed, 0xd5}},
		{"pass-rate line (and 6.1/x86_64's)", [3]uint8{0x1a, 0x7f, 0x37}}, {"duration line (and 5.10/arm64's)", [3]uint8{0x09, 0x69, 0xda}},
		{"limit line (and 5.10/x86_64's)", [3]uint8{0xcf, 0x22, 0x2e}}, {"6.1/arm64 line", [3]uint8{0x82, 0x50, 0xdf}},
		{"6.12/arm64 line", [3]uint8{0x1b, 0x7c, 0x83}},
	} {
		if n := countColour(img, c.rgb); n < 40 {
			t.Errorf("screenshot: %d pixels of the %s colour #%02x%02x%02x", n, c.what, c.rgb[0], c.rgb[1], c.rgb[2])
		} else {
			t.Logf("screenshot: %d pixels of the %s colour", n, c.what)
		}
	}
	if dir := os.Getenv("VMRUNNER_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "site.png"), []byte(readTestFile(t, shot)), 0o644)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// countColour counts the pixels within a small distance of c (anti-aliasing
// blends a line's edges).
func countColour(img image.Image, c [3]uint8) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, c uint8) bool { d := int(v) - int(c); return d >= -6 && d <= 6 }

// TestSiteWeight prints the weight of a site of 90 nights of the default
// matrix: the real run's records, night after night, with a verifier
// program's complexity moving. The index a visitor loads must stay under
// 1 MB.
func TestSiteWeight(t *testing.T) {
	real := realRun(t, filepath.Join(t.TempDir(), "real"))
	parent := t.TempDir()
	var runs []Run
	for i := range 90 {
		r := real
		r.Run.ID = fmt.Sprintf("night-%02d", i)
		r.Run.Started = real.Run.Started.AddDate(0, 0, i-89)
		r.Results = make([]results.Record, len(real.Results))
		for j, rec := range real.Results {
			if rec.Check == "verifier/probes/bounded_loop" {
				rec.Details = json.RawMessage(fmt.Sprintf(`{"object":"probes","program":"bounded_loop","insns_processed":%d,"insns_limit":1000000}`, 643+i*97+j))
			}
			if i%17 == 5 && rec.Check == "features" && rec.Arch == "arm64" {
				rec.Status = protocol.StatusFail
			}
			rec.DurationMS += int64(i % 7 * 10)
			r.Results[j] = rec
		}
		r.Dir = filepath.Join(parent, r.Run.ID)
		runs = append(runs, r)
	}
	out := filepath.Join(t.TempDir(), "site")
	start := time.Now()
	st, err := WriteSite(out, runs, SiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("site of 90 nights × the default matrix (%d records a night): index.html %d bytes (%.0f KiB), site %d bytes in %d files, written in %s\n",
		len(real.Results), st.IndexSize, float64(st.IndexSize)/1024, st.TotalSize, st.Files, time.Since(start).Round(time.Millisecond))
	if st.IndexSize >= 1_000_000 {
		t.Errorf("index.html is %d bytes: more than 1 MB", st.IndexSize)
	}
}
