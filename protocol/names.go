package protocol

import "strings"

// Names the guest sends are paths of segments of [A-Za-z0-9._-], none of
// them "." or "..": safe as a relative path on the host, as a cell of the
// summary table, an XML attribute or a terminal line.
const (
	maxNameBytes    = 256
	maxNameSegments = 6
)

// ValidCheckName reports whether name can name a result: the check's own
// name ("btf") or a sub-result under it ("verifier/probes/loop"), 1 to 6
// segments, at most 256 bytes.
func ValidCheckName(name string) bool { return validPath(name, 1) }

// ValidArtifactName reports whether name is safe to use as a relative path
// on the host: 2 to 6 segments, at most 256 bytes. At least two segments
// keep artifacts out of the files the host writes itself (console.log,
// qemu.log); the host also refuses a first segment named like one of them.
func ValidArtifactName(name string) bool { return validPath(name, 2) }

func validPath(name string, minSegments int) bool {
	if len(name) == 0 || len(name) > maxNameBytes {
		return false
	}
	segs := strings.Split(name, "/")
	if len(segs) < minSegments || len(segs) > maxNameSegments {
		return false
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}
