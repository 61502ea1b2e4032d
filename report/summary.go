package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// WriteSummary prints the results table: kernel, arch, release, check, status,
// reason, time and message, one row per record. An unfinished run is announced above
// and below the table, and each VM it has no record of gets a row of its own
// (check vm, error incomplete).
func WriteSummary(w io.Writer, rep results.Report) error {
	note := IncompleteNote(rep)
	if note != "" {
		if _, err := fmt.Fprintf(w, "INCOMPLETE RUN: %s\n\n", note); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tARCH\tRELEASE\tCHECK\tSTATUS\tREASON\tTIME\tMESSAGE")
	n := map[protocol.Status]int{}
	for _, r := range records(rep) {
		n[r.Status]++
		status := string(r.Status)
		if r.ErrorKind != "" && r.ErrorKind != results.KindCheck {
			status += " (" + string(r.ErrorKind) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kernel, r.Arch, orDefault(r.KernelRelease, "-"), r.Check, status,
			orDefault(string(r.ReasonCode()), "-"),
			(time.Duration(r.DurationMS) * time.Millisecond).Round(10*time.Millisecond), text.OneLine(r.Message, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nchecks: %d pass, %d fail, %d error, %d skip\n",
		n[protocol.StatusPass], n[protocol.StatusFail], n[protocol.StatusError], n[protocol.StatusSkip])
	if err == nil && note != "" {
		_, err = fmt.Fprintf(w, "INCOMPLETE: the run did not finish; see above\n")
	}
	return err
}
