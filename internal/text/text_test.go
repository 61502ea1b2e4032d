package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"", 0, ""},
		{"abc", 0, "…"},
		{"abc", -1, "…"},
		// "é" is two bytes: a cut inside it backs up to before it.
		{"aé", 2, "a…"},
		{"aéb", 3, "aé…"},
		// "€" is three bytes.
		{"€€", 4, "€…"},
		{"€€", 5, "€…"},
		{"€€", 6, "€€"},
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q: invalid UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("a\n b\t\tc\r\n", 100); got != "a b c" {
		t.Errorf("OneLine = %q", got)
	}
	if got := OneLine("one two three", 7); got != "one two…" {
		t.Errorf("OneLine = %q", got)
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want, wantLine string }{
		{"plain text", "plain text", "plain text"},
		{"two\nlines\tand tab", "two\nlines\tand tab", `two\nlines\tand tab`},
		{"red \x1b[31mALERT\x1b[0m", `red \x1b[31mALERT\x1b[0m`, `red \x1b[31mALERT\x1b[0m`},
		{"title \x1b]0;pwned\x07", `title \x1b]0;pwned\x07`, `title \x1b]0;pwned\x07`},
		{"back\bspace\rcr", `back\x08space\rcr`, `back\x08space\rcr`},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`, `c1 \u009b31m`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`, `bidi \u202egnp.exe`},
		{"bad \xff utf8", "bad \uFFFD utf8", "bad \uFFFD utf8"},
		{"ünïcödé ok", "ünïcödé ok", "ünïcödé ok"},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := SanitizeLine(tt.in); got != tt.wantLine {
			t.Errorf("SanitizeLine(%q) = %q, want %q", tt.in, got, tt.wantLine)
		}
	}
}

// Whatever goes in, nothing a terminal acts on comes out.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "a\x1b[2J", "\u009b", "\xff\xfe", "line\r\nline", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Sanitize(s), SanitizeLine(s)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q", s)
			}
			for _, r := range out {
				if r != '\n' && r != '\t' && unsafeRune(r, false) {
					t.Fatalf("%q survives in %q", r, out)
				}
			}
		}
		if strings.ContainsAny(SanitizeLine(s), "\n\t") {
			t.Fatalf("SanitizeLine(%q) kept a newline or tab", s)
		}
		if got := Truncate(s, 7); len(got) > 7+len(Ellipsis) || (utf8.ValidString(s) && !utf8.ValidString(got)) {
			t.Fatalf("Truncate(%q, 7) = %q", s, got)
		}
	})
}

func TestIsSHA256Hex(t *testing.T) {
	ok := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{ok, true},
		{strings.ToUpper(ok), false},
		{ok[:63], false},
		{ok + "0", false},
		{ok[:63] + "g", false},
		{"../" + ok[3:], false},
		{"", false},
	} {
		if got := IsSHA256Hex(tc.s); got != tc.want {
			t.Errorf("IsSHA256Hex(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
