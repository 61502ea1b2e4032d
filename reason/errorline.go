package reason

import "strings"

// OutputErrorLine is the index in a program's output of the line that
// says why it failed: the verifier's line in a log libbpf printed, else
// the first line of the loader's own errors FromOutput reads; -1 when
// there is none.
func OutputErrorLine(lines []string) int {
	for i, l := range lines {
		if !strings.Contains(l, logBegin) {
			continue
		}
		end := len(lines)
		for j := i + 1; j < len(lines); j++ {
			if strings.Contains(lines[j], logEnd) {
				end = j
				break
			}
		}
		if at := LogErrorLine(lines[i+1 : end]); at >= 0 {
			return i + 1 + at
		}
		return i
	}
	for i, l := range lines {
		if _, ok := fromLine(l); ok {
			return i
		}
	}
	return -1
}

// LogErrorLine is the index in a verifier log of the line that says why
// the program was refused (DecisiveLine's, or libbpf's CO-RE line), or -1.
func LogErrorLine(log []string) int {
	for i, l := range log {
		if strings.HasPrefix(strings.TrimSpace(l), "failed to resolve CO-RE relocation") {
			return i
		}
	}
	line, core := DecisiveLine(log)
	if line == "" {
		return -1
	}
	// DecisiveLine cuts a long line: its beginning finds it.
	line = line[:min(len(line), 80)]
	if core {
		for i, l := range log {
			if strings.Contains(l, line) {
				return i
			}
		}
	}
	for i := len(log) - 1; i >= 0; i-- {
		if strings.Contains(log[i], line) {
			return i
		}
	}
	return -1
}
