package report

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
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
		s = strings.TrimSuffix(text.Truncate(s, detailsBytes), text.Ellipsis) + "\n… (cut)"
	}
	return s
}
