package report

import (
	"fmt"
	"strings"

	"github.com/vmrunner/vmrunner/reason"
)

// errorExcerpt returns the lines of a log of the run directory that say
// why its program failed — the verifier's line and the lines that led to
// it, libbpf's or cilium/ebpf's first error in a program's output — at
// most maxLines and maxBytes of them, and which lines they are ("lines
// 40-52 of 1200, to the error"). A log with no such line gives its last
// lines ("last lines"). A log too long to read whole is read from its end,
// where a verifier log's error is.
func errorExcerpt(dir, rel string, maxLines, maxBytes int) (string, string, error) {
	all, cut, err := tailFile(dir, rel, 1<<30, 1<<20)
	if err != nil {
		return "", "", err
	}
	lines := strings.Split(all, "\n")
	at := reason.OutputErrorLine(lines)
	if strings.Contains("/"+rel, "/verifier/") {
		at = reason.LogErrorLine(lines)
	}
	if at < 0 {
		from := max(0, len(lines)-maxLines)
		return fitBytes(lines[from:], maxBytes), "last lines", nil
	}
	// The error, two lines after it (libbpf's next words, the verifier's
	// figures), and what led to it.
	end := min(len(lines), at+3)
	from := max(0, end-maxLines)
	ex := fitBytes(lines[from:end], maxBytes)
	of := fmt.Sprintf("%d", len(lines))
	if cut {
		of = "the last " + of
	}
	return ex, fmt.Sprintf("lines %d-%d of %s, to the error at line %d", from+1, end, of, at+1), nil
}

// fitBytes joins lines, dropping lines from the front to fit maxBytes.
func fitBytes(lines []string, maxBytes int) string {
	s := strings.Join(lines, "\n")
	for len(s) > maxBytes && len(lines) > 1 {
		lines = lines[1:]
		s = strings.Join(lines, "\n")
	}
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	return s
}
