package bpfprobe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is an upstream kernel version, MAJOR.MINOR.PATCH.
type Version struct {
	Major, Minor, Patch int
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	for _, d := range [3]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
	}
	return 0
}

// ErrBadVersion is wrapped by every parse error of this file.
var ErrBadVersion = errors.New("bad kernel version")

// ParseRelease reads the upstream version at the start of a kernel release
// string as uname -r prints it: "6.12.117+deb13-amd64" is 6.12.117,
// "5.10.0-32-amd64" is 5.10.0, "6.8-rc1" is 6.8.0. Distribution suffixes
// are ignored; the version is what the distribution says it is based on,
// so a backport shows up as a feature present earlier than upstream.
func ParseRelease(release string) (Version, error) {
	end := strings.IndexFunc(release, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if end < 0 {
		end = len(release)
	}
	v, n, err := parseNumbers(strings.TrimSuffix(release[:end], "."))
	if err != nil || n < 2 {
		return Version{}, fmt.Errorf("%w: %q does not start with MAJOR.MINOR", ErrBadVersion, release)
	}
	return v, nil
}

// parseNumbers parses "A.B" or "A.B.C" and says how many parts it had.
func parseNumbers(s string) (Version, int, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, 0, fmt.Errorf("%w: %q: expected MAJOR.MINOR or MAJOR.MINOR.PATCH", ErrBadVersion, s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 65535 || p == "" || (len(p) > 1 && p[0] == '+') {
			return Version{}, 0, fmt.Errorf("%w: %q: %q is not a number", ErrBadVersion, s, p)
		}
		n[i] = x
	}
	return Version{n[0], n[1], n[2]}, len(parts), nil
}

// Range is a set of kernel versions, written as in matrix.yaml:
//
//	<5.17     older than 5.17.0
//	<=5.16    up to and including 5.16.0; write <5.17 for all of 5.16.x
//	>=6.0     6.0.0 and newer
//	>6.1      newer than 6.1.0
//	5.10      any 5.10.x
//	=5.10.0   exactly 5.10.0 (also written 5.10.0)
//
// Versions are MAJOR.MINOR or MAJOR.MINOR.PATCH; a missing PATCH is 0 except
// for the bare MAJOR.MINOR form, which means the whole series.
type Range struct {
	text   string
	op     string // "<", "<=", ">", ">=", "=" or "series"
	bound  Version
	series bool
}

// ParseRange parses one version range; see Range.
func ParseRange(s string) (Range, error) {
	text := strings.TrimSpace(s)
	op := ""
	for _, o := range []string{"<=", ">=", "<", ">", "="} {
		if strings.HasPrefix(text, o) {
			op = o
			break
		}
	}
	v, n, err := parseNumbers(strings.TrimSpace(text[len(op):]))
	if err != nil {
		return Range{}, fmt.Errorf("%w: range %q: expected <V, <=V, >V, >=V, =V or V with V like 5.17 or 5.10.0", ErrBadVersion, s)
	}
	r := Range{text: text, op: op, bound: v}
	if op == "" {
		r.op = "="
		r.series = n == 2
	}
	return r, nil
}

func (r Range) String() string { return r.text }

// Contains reports whether v is in the range.
func (r Range) Contains(v Version) bool {
	if r.series {
		return v.Major == r.bound.Major && v.Minor == r.bound.Minor
	}
	c := v.Compare(r.bound)
	switch r.op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	default:
		return c == 0
	}
}

// AnyContains reports whether one of the ranges written in texts contains
// v, and which. Texts that do not parse are an error.
func AnyContains(texts []string, v Version) (string, bool, error) {
	for _, t := range texts {
		r, err := ParseRange(t)
		if err != nil {
			return "", false, err
		}
		if r.Contains(v) {
			return r.String(), true, nil
		}
	}
	return "", false, nil
}
