package protocol

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReasonsDocumented holds docs/reasons.md and Reasons together: a row
// per reason, as the table says it, and no row for a reason that is not.
func TestReasonsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := map[string]bool{}
	for _, ri := range Reasons {
		row := fmt.Sprintf("| `%s` | %s | %s |", ri.Reason, ri.Meaning, ri.Action)
		want[row] = true
		if !strings.Contains(doc, row+"\n") {
			t.Errorf("docs/reasons.md lacks the row\n%s", row)
		}
		if !ri.Reason.Valid() {
			t.Errorf("%q is not a valid reason", ri.Reason)
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| `") && !want[line] {
			t.Errorf("docs/reasons.md has a row for no reason of the table:\n%s", line)
		}
	}
}

func TestReasonValid(t *testing.T) {
	for r, want := range map[Reason]bool{
		"TOO_COMPLEX": true, "X86_64": true, "": false, "too_complex": false, "A B": false,
		Reason(strings.Repeat("A", 33)): false,
	} {
		if got := r.Valid(); got != want {
			t.Errorf("%q.Valid() = %v, want %v", r, got, want)
		}
	}
}
