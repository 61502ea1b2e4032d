package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/results"
)

// Run is a report with the directory its relative paths are under.
type Run struct {
	results.Report
	Dir string // the run directory; console and artifact paths are relative to it
}

// Load reads a run from a results.json file or from a run directory holding
// one.
func Load(path string) (Run, error) { return load(path, results.ReadReport) }

// LoadShard is Load for a shard run to merge: its results.json is bounded
// (results.ReadShard).
func LoadShard(path string) (Run, error) { return load(path, results.ReadShard) }

func load(path string, read func(string) (results.Report, error)) (Run, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Run{}, fmt.Errorf("load run: %w", err)
	}
	file, dir := path, filepath.Dir(path)
	if fi.IsDir() {
		file, dir = filepath.Join(path, "results.json"), path
	}
	rep, err := read(file)
	if err != nil {
		return Run{}, fmt.Errorf("load run: %w", err)
	}
	return Run{Report: rep, Dir: dir}, nil
}

// Bounds of what the writers quote from files of the run directory.
const (
	consoleLines  = 60
	consoleBytes  = 16 << 10
	artifactLines = 200
	artifactBytes = 64 << 10
	detailsBytes  = 64 << 10
)

// tailFile returns the last lines of a file of the run directory, at most
// maxBytes of them, and whether anything was cut. The path comes from
// results.json, which may come from anywhere: os.Root keeps the read inside
// dir (no "..", no symlink out).
func tailFile(dir, rel string, maxLines, maxBytes int) (string, bool, error) {
	if dir == "" || rel == "" {
		return "", false, errors.New("no file")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", false, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", false, err
	}
	if !fi.Mode().IsRegular() {
		return "", false, &fs.PathError{Op: "read", Path: rel, Err: errors.New("not a regular file")}
	}
	cut := false
	// Read a window at the end, four times the byte bound, to find lines in.
	window := int64(4 * maxBytes)
	if fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return "", false, err
		}
		cut = true
	}
	b, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return "", false, err
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if cut && len(lines) > 1 {
		lines = lines[1:] // the first line of the window is partial
	}
	if len(lines) > maxLines {
		lines, cut = lines[len(lines)-maxLines:], true
	}
	out := bytes.Join(lines, []byte("\n"))
	if len(out) > maxBytes {
		out, cut = out[len(out)-maxBytes:], true
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
	}
	// console.log is the guest's console as it printed it: what a report
	// quotes of it is sanitised like every other guest string.
	return text.Sanitize(string(out)), cut, nil
}

// targets returns the kernel × arch pairs of the records, sorted.
func targets(recs []results.Record) []results.Target {
	seen := map[results.Target]bool{}
	var ts []results.Target
	for _, r := range recs {
		if t := results.TargetOf(r); !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		if c := naturalCompare(ts[i].Kernel, ts[j].Kernel); c != 0 {
			return c < 0
		}
		return ts[i].Arch < ts[j].Arch
	})
	return ts
}

// checks returns the check names of the records, sorted.
func checks(recs []results.Record) []string {
	seen := map[string]bool{}
	var cs []string
	for _, r := range recs {
		if !seen[r.Check] {
			seen[r.Check] = true
			cs = append(cs, r.Check)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return naturalCompare(cs[i], cs[j]) < 0 })
	return cs
}

// naturalCompare orders strings with their digit runs compared as numbers,
// so kernel 6.12 sorts after 6.1 and 6.9. Written here: it is a dozen lines
// and no library in go.mod does it.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ra, rb := leadingRun(a), leadingRun(b)
		da, db := unicode.IsDigit(rune(ra[0])), unicode.IsDigit(rune(rb[0]))
		switch {
		case da && db:
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
		default:
			if c := strings.Compare(ra, rb); c != 0 {
				return c
			}
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return cmpInt(len(a), len(b))
}

func leadingRun(s string) string {
	digit := unicode.IsDigit(rune(s[0]))
	for i := 1; i < len(s); i++ {
		if unicode.IsDigit(rune(s[i])) != digit {
			return s[:i]
		}
	}
	return s
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
