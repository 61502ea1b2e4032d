package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// The JUnit XML elements, as Jenkins, GitLab and the GitHub test-report
// actions read them: counts and time on <testsuites> and every <testsuite>,
// classname/name/time on every <testcase>.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	ID         int             `xml:"id,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the run as JUnit XML: one <testsuite> per kernel × arch
// named "6.1/x86_64" with the kernel's identity as properties, one
// <testcase> per record. A fail carries the message and the tail of each
// .log artifact of the record (verifier logs); an error carries its kind
// and the tail of the VM's console.log. An unfinished run gets an error
// testcase for each planned VM it has no record of, and one more suite,
// "vmrunner", whose testcase "finished" is an error saying the run is
// incomplete.
func WriteJUnit(w io.Writer, run Run) error {
	doc := junitSuites{Name: "vmrunner " + run.Run.ID, Time: seconds(run.Run.DurationMS)}
	recs := records(run.Report)
	for i, t := range targets(recs) {
		s := junitSuite{Name: t.String(), ID: i, Hostname: run.Run.Host}
		if !run.Run.Started.IsZero() {
			s.Timestamp = run.Run.Started.UTC().Format(time.RFC3339)
		}
		var total int64
		for _, r := range sortedRecords(recs, t) {
			if len(s.Properties) == 0 {
				s.Properties = suiteProperties(r)
			}
			c := junitCase{Classname: t.String(), Name: r.Check, Time: seconds(r.DurationMS)}
			switch r.Status {
			case protocol.StatusFail:
				s.Failures++
				c.Failure = &junitProblem{Message: text.OneLine(r.Message, 512), Type: string(r.ReasonCode()), Text: failureText(run, r)}
			case protocol.StatusError:
				s.Errors++
				c.Error = &junitProblem{Message: text.OneLine(r.Message, 512), Type: string(r.ErrorKind), Text: errorText(run, r)}
			case protocol.StatusSkip:
				s.Skipped++
				c.Skipped = &junitProblem{Message: text.OneLine(r.Message, 512)}
			}
			if len(r.Details) > 0 && r.Status != protocol.StatusPass {
				c.SystemOut = "details: " + prettyJSON(r.Details)
			}
			s.Tests++
			total += r.DurationMS
			s.Cases = append(s.Cases, c)
		}
		s.Time = seconds(total)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if note := IncompleteNote(run.Report); note != "" {
		doc.Tests++
		doc.Errors++
		doc.Suites = append(doc.Suites, junitSuite{Name: "vmrunner", ID: len(doc.Suites), Tests: 1, Errors: 1, Time: seconds(0), Hostname: run.Run.Host,
			Cases: []junitCase{{Classname: "vmrunner", Name: "finished", Time: seconds(0),
				Error: &junitProblem{Message: "incomplete run", Type: string(results.KindIncomplete), Text: "incomplete run: " + note}}}})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

func suiteProperties(r results.Record) []junitProperty {
	ps := []junitProperty{{"kernel", r.Kernel}, {"arch", r.Arch}}
	add := func(name, value string) {
		if value != "" {
			ps = append(ps, junitProperty{name, value})
		}
	}
	add("kernel_release", r.KernelRelease)
	add("accel", r.Accel)
	if s := r.Source; s != nil {
		add("source_type", s.Type)
		add("source_package", s.Package)
		add("source_version", s.Version)
		add("source_suite", s.Suite)
		add("source_sha256", s.SHA256)
		add("source_url", s.URL)
	}
	if r.BootMS > 0 {
		add("boot_ms", strconv.FormatInt(r.BootMS, 10))
	}
	add("boot", r.Boot)
	return ps
}

// failureText is the message, then the tail of each log artifact.
func failureText(run Run, r results.Record) string {
	var b strings.Builder
	b.WriteString(r.Message)
	fmt.Fprintf(&b, "\nreason: %s", reasonText(r))
	for _, a := range r.Artifacts {
		if !strings.HasSuffix(a, ".log") {
			continue
		}
		text, cut, err := tailFile(run.Dir, a, artifactLines, artifactBytes)
		fmt.Fprintf(&b, "\n\n--- %s", a)
		switch {
		case err != nil:
			fmt.Fprintf(&b, " (not readable: %v)", err)
		case cut:
			fmt.Fprintf(&b, " (last %d lines at most) ---\n%s", artifactLines, text)
		default:
			fmt.Fprintf(&b, " ---\n%s", text)
		}
	}
	return b.String()
}

// errorText is the kind and message, the splats, then the console's tail.
func errorText(run Run, r results.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", orDefault(string(r.ErrorKind), "error"), r.Message)
	fmt.Fprintf(&b, "\nreason: %s", reasonText(r))
	for _, s := range r.Splats {
		fmt.Fprintf(&b, "\nsplat %s: %s", s.Kind, s.Line)
	}
	if r.Console != "" {
		text, _, err := tailFile(run.Dir, r.Console, consoleLines, consoleBytes)
		if err != nil {
			fmt.Fprintf(&b, "\n\n--- %s (not readable: %v)", r.Console, err)
		} else {
			fmt.Fprintf(&b, "\n\n--- %s (last %d lines at most) ---\n%s", r.Console, consoleLines, text)
		}
	}
	return b.String()
}

// sortedRecords returns the records of one target, sorted by check.
func sortedRecords(recs []results.Record, t results.Target) []results.Record {
	var out []results.Record
	for _, c := range checks(recs) {
		for _, r := range recs {
			if results.TargetOf(r) == t && r.Check == c {
				out = append(out, r)
			}
		}
	}
	return out
}

func seconds(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// WriteJUnitFile writes the JUnit XML of the run to path.
func WriteJUnitFile(path string, run Run) error {
	var b strings.Builder
	if err := WriteJUnit(&b, run); err != nil {
		return err
	}
	return writeFile(path, []byte(b.String()))
}
