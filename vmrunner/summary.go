package vmrunner

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// WriteSummary prints the results table: kernel, arch, release, check, status, time.
func WriteSummary(w io.Writer, rep results.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tARCH\tRELEASE\tCHECK\tSTATUS\tTIME\tMESSAGE")
	counts := map[protocol.Status]int{}
	for _, r := range rep.Results {
		counts[r.Status]++
		status := string(r.Status)
		if r.ErrorKind != "" && r.ErrorKind != results.KindCheck {
			status += " (" + string(r.ErrorKind) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kernel, r.Arch, orDash(r.KernelRelease), r.Check, status,
			(time.Duration(r.DurationMS) * time.Millisecond).Round(10*time.Millisecond), oneLine(r.Message, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nchecks: %d pass, %d fail, %d error, %d skip\n",
		counts[protocol.StatusPass], counts[protocol.StatusFail], counts[protocol.StatusError], counts[protocol.StatusSkip])
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
