package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// gfmTables parses doc as GitHub does (goldmark with its GFM extension)
// and returns each table's rows as cell texts, header first.
func gfmTables(t *testing.T, doc []byte) [][][]string {
	t.Helper()
	md := goldmark.New(goldmark.WithExtensions(extension.GFM))
	root := md.Parser().Parse(text.NewReader(doc))
	var tables [][][]string
	err := ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		tbl, ok := n.(*east.Table)
		if !entering || !ok {
			return ast.WalkContinue, nil
		}
		var rows [][]string
		for row := tbl.FirstChild(); row != nil; row = row.NextSibling() {
			var cells []string
			for c := row.FirstChild(); c != nil; c = c.NextSibling() {
				cells = append(cells, string(c.Text(doc))) //nolint:staticcheck // the cell's text is what a reader sees
			}
			rows = append(rows, cells)
		}
		tables = append(tables, rows)
		return ast.WalkSkipChildren, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := md.Convert(doc, &html); err != nil {
		t.Fatal(err)
	}
	return tables
}

func TestWriteMarkdown(t *testing.T) {
	run := sampleRun(t)
	base := sampleRun(t)
	// The baseline passed btf on 5.10.
	for i, r := range base.Results {
		if r.Check == "btf" && r.Kernel == "5.10" {
			base.Results[i].Status, base.Results[i].Message = protocol.StatusPass, "82905 types"
		}
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, run, MarkdownOptions{Baseline: &base}); err != nil {
		t.Fatal(err)
	}
	doc := b.Bytes()
	tables := gfmTables(t, doc)
	if len(tables) < 2 {
		t.Fatalf("%d tables, want the grid and the reasons:\n%s", len(tables), doc)
	}
	grid := tables[0]
	targets := len(newGrid(records(run.Report)).Targets)
	for i, row := range grid {
		if len(row) != targets+1 {
			t.Errorf("grid row %d has %d cells, want %d: %q", i, len(row), targets+1, row)
		}
	}
	if got := strings.Join(grid[0], "|"); !strings.HasPrefix(got, "check|") {
		t.Errorf("grid header %q", got)
	}
	var btf []string
	for _, row := range grid {
		if row[0] == "btf" {
			btf = row
		}
	}
	if !strings.Contains(strings.Join(btf, "|"), "MISSING_BTF") {
		t.Errorf("btf row %q lacks its failure's reason", btf)
	}
	reasons := tables[1]
	if strings.Join(reasons[0], "|") != "reason|failures|what it means|what to do" || len(reasons) < 2 {
		t.Errorf("reasons table %q", reasons)
	}
	for _, want := range []string{"### Against", "5.10/x86_64 btf: pass → fail MISSING_BTF **regression**",
		"<details><summary>", "6.1-x86_64/verifier/probes/loop.log (lines 288-302 of 302, to the error at line 301):", "</details>"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("markdown lacks %q:\n%s", want, doc)
		}
	}
}

// TestWriteMarkdownLimit: a run too large for a comment is summarised,
// never cut: every table it keeps is whole, and it says what it left out.
func TestWriteMarkdownLimit(t *testing.T) {
	run := sampleRun(t)
	var extra []results.Record
	for k := 0; k < 80; k++ {
		for p := 0; p < 60; p++ {
			extra = append(extra, results.Record{Kernel: fmt.Sprintf("6.%d", k), Arch: "x86_64", Check: fmt.Sprintf("verifier/big/prog_%03d", p),
				Status: protocol.StatusFail, Reason: protocol.ReasonTooComplex, Message: strings.Repeat("rejected: too complex ", 10)})
		}
	}
	run.Results = append(run.Results, extra...)
	for _, limit := range []int{MarkdownCommentLimit, 1 << 20} {
		var b bytes.Buffer
		if err := WriteMarkdown(&b, run, MarkdownOptions{Limit: limit}); err != nil {
			t.Fatal(err)
		}
		if b.Len() > limit {
			t.Errorf("limit %d: %d bytes", limit, b.Len())
		}
		for i, tbl := range gfmTables(t, b.Bytes()) {
			for j, row := range tbl {
				if len(row) != len(tbl[0]) {
					t.Errorf("limit %d: table %d row %d has %d cells, header %d", limit, i, j, len(row), len(tbl[0]))
				}
			}
		}
		if !strings.Contains(b.String(), "more failures not shown here") {
			t.Errorf("limit %d: does not say what it left out", limit)
		}
		if limit == MarkdownCommentLimit && !strings.Contains(b.String(), "per kernel and arch instead") {
			t.Errorf("the grid of %d records was kept in a comment", len(run.Results))
		}
	}
}
