package text

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Ellipsis marks a truncated string.
const Ellipsis = "…"

// Truncate returns s when it has at most n bytes; otherwise its longest
// prefix of at most n bytes that ends on a character boundary, followed by
// Ellipsis.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	cut := n
	// Back up to the start of the character that straddles the limit.
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Ellipsis
}

// OneLine folds every run of white space (newlines included) into one space
// and truncates the result to n bytes.
func OneLine(s string, n int) string {
	return Truncate(strings.Join(strings.Fields(s), " "), n)
}

// Sanitize makes an untrusted string safe to print: invalid UTF-8 becomes
// U+FFFD, and every control character except tab and newline (C0, DEL, C1)
// and every bidirectional formatting character is replaced by its Go escape
// (`\x1b`, `\u009b`, `\u202e`). A string that needs nothing is returned as is.
func Sanitize(s string) string {
	return sanitize(s, true)
}

// SanitizeLine is Sanitize for strings that must stay on one line: newline
// and tab are escaped too.
func SanitizeLine(s string) string {
	return sanitize(s, false)
}

func sanitize(s string, keepNewline bool) string {
	if clean(s, keepNewline) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case unsafeRune(r, keepNewline):
			b.WriteString(escape(r))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no change; the common case costs one pass.
func clean(s string, keepNewline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return cleanSlow(s[i:], keepNewline)
		}
		if unsafeRune(rune(c), keepNewline) {
			return false
		}
	}
	return true
}

func cleanSlow(s string, keepNewline bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || unsafeRune(r, keepNewline) {
			return false
		}
		i += size
	}
	return true
}

func unsafeRune(r rune, keepNewline bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return !keepNewline
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f: // C1 controls: CSI (0x9b) and OSC (0x9d) on some terminals
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional overrides and marks ("Trojan Source")
	}
	return false
}

func escape(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\t':
		return `\t`
	case '\r':
		return `\r`
	}
	if r < 0x80 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// IsSHA256Hex reports whether s is a SHA-256 as vmrunner writes it: 64
// lower-case hex digits. Digests and the names made of them (cache keys,
// snapshot IDs) are checked with it before they are used as file names.
func IsSHA256Hex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// LastLines is the last n lines of s joined with " | ", for one-line
// error messages quoting a process's stderr.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// OrNone is s, or "none" when s is blank.
func OrNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}
