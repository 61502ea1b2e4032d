package report

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// GitHub writes what a GitHub Actions job shows when the environment says it
// runs in one (GITHUB_ACTIONS=true): an ::error annotation per failed or
// errored record on w, and a Markdown summary appended to the file named by
// GITHUB_STEP_SUMMARY. Elsewhere it does nothing. getenv is os.Getenv in
// production.
func GitHub(getenv func(string) string, w io.Writer, run Run) error {
	if getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	if err := WriteAnnotations(w, run); err != nil {
		return err
	}
	path := getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open step summary: %w", err)
	}
	if err := WriteStepSummary(f, run); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write step summary: %w", err)
	}
	return nil
}

// WriteAnnotations prints one workflow command per failed or errored record:
//
//	::error title=vmrunner 6.1/x86_64 btf: fail::missing BTF types: sock
//
// An unfinished run first gets one annotation saying so.
func WriteAnnotations(w io.Writer, run Run) error {
	if note := IncompleteNote(run.Report); note != "" {
		if _, err := fmt.Fprintf(w, "::error title=%s::%s\n", escapeProperty("vmrunner run "+run.Run.ID+": incomplete"), escapeData(note)); err != nil {
			return fmt.Errorf("write annotations: %w", err)
		}
	}
	for _, r := range problems(records(run.Report)) {
		title := fmt.Sprintf("vmrunner %s %s: %s", results.TargetOf(r), r.Check, r.Status)
		if r.ErrorKind != "" && r.ErrorKind != results.KindCheck {
			title += " (" + string(r.ErrorKind) + ")"
		}
		title += " " + string(r.ReasonCode())
		msg := text.Truncate(r.Message, 4096)
		if r.ReasonDetail != "" {
			msg += "\n" + string(r.ReasonCode()) + ": " + text.Truncate(r.ReasonDetail, 512)
		}
		if h := HintText(r); h != "" {
			msg += "\n" + h
		}
		for _, s := range r.Splats {
			msg += "\n" + s.Kind + ": " + text.Truncate(s.Line, 512)
		}
		if msg == "" {
			msg = string(r.Status)
		}
		if _, err := fmt.Fprintf(w, "::error title=%s::%s\n", escapeProperty(title), escapeData(msg)); err != nil {
			return fmt.Errorf("write annotations: %w", err)
		}
	}
	return nil
}

// escapeData and escapeProperty follow the workflow-commands encoding of the
// GitHub Actions toolkit (toCommandValue / escapeData / escapeProperty).
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

var statusEmoji = map[protocol.Status]string{
	protocol.StatusPass:  "✅",
	protocol.StatusFail:  "❌",
	protocol.StatusError: "💥",
	protocol.StatusSkip:  "⏭️",
}

// WriteStepSummary writes a Markdown grid (a row per check, a column per
// kernel × arch, a status emoji per cell) and the list of failures.
func WriteStepSummary(w io.Writer, run Run) error {
	var b strings.Builder
	recs := records(run.Report)
	b.WriteString(markdownHead(run, recs))
	b.WriteString(markdownGrid(recs, statusCell))
	if ps := problems(recs); len(ps) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, r := range ps {
			kind := ""
			if r.ErrorKind != "" {
				kind = " (" + md(string(r.ErrorKind)) + ")"
			}
			fmt.Fprintf(&b, "- %s **%s** %s: %s%s `%s`: %s\n", statusEmoji[r.Status], md(results.TargetOf(r).String()), md(r.Check),
				r.Status, kind, md(string(r.ReasonCode())), md(text.OneLine(r.Message, 300)))
		}
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write step summary: %w", err)
	}
	return nil
}

// md makes guest text inert in a Markdown table cell: no HTML, no column
// breaks, no line breaks, no code spans.
func md(s string) string {
	s = html.EscapeString(text.OneLine(s, 1<<10))
	return strings.NewReplacer("|", `\|`, "`", "'").Replace(s)
}
