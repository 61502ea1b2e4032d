package report

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// prettyJSON indents details for people, bounded to detailsBytes.
func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if len(s) > detailsBytes {
		s = s[:detailsBytes]
		for len(s) > 0 && !utf8ValidEnd(s) {
			s = s[:len(s)-1]
		}
		s += "\n… (cut)"
	}
	return s
}

func utf8ValidEnd(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return r != utf8.RuneError || size > 1
}
