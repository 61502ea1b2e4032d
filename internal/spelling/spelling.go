// Package spelling suggests the word a user probably meant, for "unknown
// key" and "unknown check" messages on both sides of vmrunner.
package spelling

import (
	"fmt"
	"strings"
)

// maxEdits is the most edits a typo may have; about one per three
// characters is allowed too, whichever is smaller.
const maxEdits = 2

// DidYouMean returns ` (did you mean "x"?)` for the candidate closest to
// word, or "" if none is close enough to be a plausible typo. Its cost is
// bounded by the candidates' lengths, however long word is.
func DidYouMean(word string, candidates []string) string {
	best, bestDist := "", 0
	lw := strings.ToLower(word)
	for _, c := range candidates {
		if d := len(word) - len(c); d > maxEdits || d < -maxEdits {
			continue // more than maxEdits insertions or deletions apart
		}
		d := editDistance(lw, strings.ToLower(c))
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > maxEdits || bestDist*3 > len(word) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: the Levenshtein distance where swapping two adjacent bytes
// ("memroy") is one edit. It keeps three rows of the table.
func editDistance(a, b string) int {
	n := len(b) + 1
	var buf [3 * 32]int // on the stack for the short words of a schema
	var rows []int
	if 3*n <= len(buf) {
		rows = buf[:3*n]
	} else {
		rows = make([]int, 3*n)
	}
	// prev2, prev and cur are the rows of a[:i-2], a[:i-1] and a[:i]:
	// cur[j] is the distance between a[:i] and b[:j].
	prev2, prev, cur := rows[:n], rows[n:2*n], rows[2*n:]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
