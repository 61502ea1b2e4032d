// Package docs is vmrunner's documentation: Markdown pages, linked from the
// repository's README.md. Its test walks every Markdown file of the
// repository and checks that each relative link names a file that exists
// and each #anchor a heading of its target, as GitHub renders them.
package docs

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestMarkdownLinks checks every Markdown file of the repository.
func TestMarkdownLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "CONTRIBUTING.md", "docs/matrix.md"} {
		if !slices.Contains(files, want) {
			t.Fatalf("%s not among the Markdown files found: %v", want, files)
		}
	}
	problems, linked, err := checkLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// A page nothing links to is a page nobody finds.
	for _, f := range files {
		if strings.HasPrefix(f, "docs/") && !linked[f] {
			t.Errorf("%s: no other Markdown file links to it (link it from README.md or a page on its topic)", f)
		}
	}
	t.Logf("%d Markdown files, %d files linked to", len(files), len(linked))
}

// TestCheckLinks runs the checker on files made for it: it must report
// every kind of broken link, and nothing else.
func TestCheckLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n"+
		"[ok](docs/a.md) [ok](docs/a.md#check-btf) [ok](#top) [ok](docs/a.md#usage-1)\n"+
		"[ok](https://example.com/x.md#nothing) [ok](main.go) [ok](main.go#L3)\n"+
		"[gone](docs/missing.md) [no anchor](docs/a.md#nothing) [no anchor](#Top)\n"+
		"`[in code](nowhere.md)` and [`code` text](docs/a.md#check-btf)\n"+
		"```\n[in a fence](nowhere.md)\n```\n"+
		"[ref]: docs/b.md\n"+
		"[outside](../elsewhere.md)\n")
	write("docs/a.md", "# A\n\n## Check `btf`\n\n## Usage\n\n## Usage\n\n[up](../README.md#top)\n")
	write("main.go", "package main\n")

	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"README.md", "docs/a.md"}; !slices.Equal(files, want) {
		t.Fatalf("files = %v, want %v", files, want)
	}
	problems, linked, err := checkLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if !linked["docs/a.md"] || !linked["README.md"] || linked["docs/missing.md"] {
		t.Errorf("linked = %v, want docs/a.md and README.md, not docs/missing.md", linked)
	}
	want := []string{
		"README.md:5: docs/missing.md: no such file",
		"README.md:5: docs/a.md#nothing: no heading of docs/a.md has the anchor nothing",
		"README.md:5: #Top: no heading of README.md has the anchor Top",
		"README.md:10: docs/b.md: no such file",
		"README.md:11: ../elsewhere.md: outside the repository",
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}

func TestSlug(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Running in CI", "running-in-ci"},
		{"results.json", "resultsjson"},
		{"Speed and memory (measured)", "speed-and-memory-measured"},
		{"Check `btf`", "check-btf"},
		{"External BTF: `btf`", "external-btf-btf"},
		{"Kernel source `ubuntu-mainline`", "kernel-source-ubuntu-mainline"},
		{"What does not work, and what to do", "what-does-not-work-and-what-to-do"},
		{"A worked example: a tracer built with bpf2go for both arches", "a-worked-example-a-tracer-built-with-bpf2go-for-both-arches"},
		{"`vmrunner kernels`", "vmrunner-kernels"},
		{"check_timeout and **bold**", "check_timeout-and-bold"},
		{"See [the docs](docs/x.md)", "see-the-docs"},
		{"Kernel × arch", "kernel--arch"},
		{"Überblick", "überblick"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

// markdownFiles lists the Markdown files under root, slash-separated and
// relative to it, leaving out hidden directories (but .github) and build
// output.
func markdownFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && ((strings.HasPrefix(name, ".") && name != ".github") || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// page is what the checker reads of one Markdown file.
type page struct {
	anchors map[string]bool
	links   []link
}

type link struct {
	line   int
	target string
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	fence      = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	codeSpan   = regexp.MustCompile("(`+)(.+?)(`+)")
	inlineLink = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^()\s<>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
	scheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	lineAnchor = regexp.MustCompile(`^L\d+(-L\d+)?$`)
)

// readPage reads a Markdown file's anchors (its headings' GitHub anchors
// and HTML name/id anchors) and its links, leaving out code.
func readPage(path string) (*page, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pg := &page{anchors: map[string]bool{}}
	seen := map[string]int{}
	var open string // the fence that opened the code block we are in
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case open == "":
				open = m[1]
				continue
			case m[1][0] == open[0] && len(m[1]) >= len(open) && strings.TrimSpace(line) == m[1]:
				open = ""
				continue
			}
		}
		if open != "" {
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			s := slug(m[2])
			if k := seen[s]; k > 0 {
				pg.anchors[fmt.Sprintf("%s-%d", s, k)] = true
			} else {
				pg.anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			pg.anchors[m[1]] = true
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			pg.links = append(pg.links, link{n, m[1]})
			continue
		}
		// A code span's text is no link, but a link's text may hold one.
		text := codeSpan.ReplaceAllStringFunc(line, func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == '`' {
					return r
				}
				return 'x'
			}, s)
		})
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			pg.links = append(pg.links, link{n, m[2]})
		}
	}
	return pg, sc.Err()
}

// slug is the anchor GitHub gives a heading: its text as rendered
// (code spans, emphasis and links reduced to their text), lowercased,
// every character but letters, digits, marks, '-' and '_' dropped, and
// each space made a '-'.
func slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	text = strings.NewReplacer("`", "", "*", "").Replace(text)
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkLinks checks the relative links of files (relative to root) and
// returns one line per broken link, in file and line order, and the files
// that another file links to.
func checkLinks(root string, files []string) ([]string, map[string]bool, error) {
	pages := map[string]*page{}
	load := func(rel string) (*page, error) {
		if pg, ok := pages[rel]; ok {
			return pg, nil
		}
		pg, err := readPage(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		pages[rel] = pg
		return pg, nil
	}
	var problems []string
	linked := map[string]bool{}
	for _, file := range files {
		pg, err := load(file)
		if err != nil {
			return nil, nil, err
		}
		for _, l := range pg.links {
			if l.target == "" || scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			bad := func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: ", file, l.line, l.target)+fmt.Sprintf(format, args...))
			}
			pathPart, anchor, _ := strings.Cut(l.target, "#")
			if p, err := url.PathUnescape(pathPart); err == nil {
				pathPart = p
			}
			target := file
			if pathPart != "" {
				if strings.HasPrefix(pathPart, "/") {
					target = strings.TrimPrefix(pathPart, "/")
				} else {
					target = filepath.ToSlash(filepath.Join(filepath.Dir(file), pathPart))
				}
				target = filepath.ToSlash(filepath.Clean(target))
				if target == ".." || strings.HasPrefix(target, "../") {
					bad("outside the repository")
					continue
				}
				info, err := os.Stat(filepath.Join(root, filepath.FromSlash(target)))
				if err != nil {
					bad("no such file")
					continue
				}
				if target != file {
					linked[target] = true
				}
				if info.IsDir() {
					target = ""
				}
			}
			if anchor == "" {
				continue
			}
			switch {
			case strings.HasSuffix(target, ".md"):
				tp, err := load(target)
				if err != nil {
					return nil, nil, err
				}
				if !tp.anchors[anchor] {
					bad("no heading of %s has the anchor %s", target, anchor)
				}
			case target != "" && lineAnchor.MatchString(anchor):
			default:
				bad("an anchor into something that is not a Markdown file")
			}
		}
	}
	return problems, linked, nil
}
