package results

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

// Part is one shard run to merge: its report and its run directory.
type Part struct {
	Report
	Dir string
}

// MergeOptions configure Merge.
type MergeOptions struct {
	// ID names the merged run.
	ID string
	// AllowPartial merges without a missing shard, or without the targets
	// an unfinished shard has no records for: each of their checks gets an
	// error record of kind KindMissing instead.
	AllowPartial bool
}

// Merge checks that parts are shards of one plan (same matrix, lock and
// plan hash, each shard once, every target with records unless
// AllowPartial) and returns them as one report: the records in shard order,
// the run's start the earliest, its end the latest, its exit code folded
// from all records. Every refusal is a one-line error naming the run and
// the shard.
func Merge(parts []Part, opts MergeOptions) (Report, error) {
	if len(parts) == 0 {
		return Report{}, errors.New("merge: no runs given")
	}
	for _, p := range parts {
		if p.Run.Shard == nil || p.Run.Shard.Index < 1 {
			return Report{}, fmt.Errorf("merge: %s is not a shard run (its results.json has no shard: run it with vmrunner run --shard I/N)", p.Dir)
		}
	}
	first := parts[0]
	ref := first.Run.Shard
	if len(ref.Targets) != ref.Count || ref.Count < 1 {
		return Report{}, fmt.Errorf("merge: %s: shard %d/%d lists the targets of %d shards", first.Dir, ref.Index, ref.Count, len(ref.Targets))
	}
	byIndex := map[int]Part{}
	for _, p := range parts {
		s := p.Run.Shard
		switch {
		case s.MatrixHash != ref.MatrixHash:
			return Report{}, fmt.Errorf("merge: %s and %s ran different matrices (matrix %s, %s): merge shards of one plan", first.Dir, p.Dir, short(ref.MatrixHash), short(s.MatrixHash))
		case s.LockHash != ref.LockHash:
			return Report{}, fmt.Errorf("merge: %s and %s ran with different lock files (lock %s, %s): merge shards of one plan", first.Dir, p.Dir, cmp.Or(short(ref.LockHash), "none"), cmp.Or(short(s.LockHash), "none"))
		case s.Plan != ref.Plan || s.Count != ref.Count:
			return Report{}, fmt.Errorf("merge: %s and %s come from different plans (plan %s of %d shards, %s of %d): the same matrix, lock, --timings and --runner make the same plan",
				first.Dir, p.Dir, short(ref.Plan), ref.Count, short(s.Plan), s.Count)
		case s.Index > s.Count:
			return Report{}, fmt.Errorf("merge: %s: shard %d/%d is out of range", p.Dir, s.Index, s.Count)
		}
		if prev, ok := byIndex[s.Index]; ok {
			return Report{}, fmt.Errorf("merge: shard %d/%d is given twice: %s and %s", s.Index, s.Count, prev.Dir, p.Dir)
		}
		byIndex[s.Index] = p
	}

	out := Report{Results: []Record{}}
	var missingShards []string
	var missing []missingTarget
	owner := map[Target]string{} // target → the run whose records it has
	for i := 1; i <= ref.Count; i++ {
		want := ref.Targets[i-1]
		p, ok := byIndex[i]
		if !ok {
			missingShards = append(missingShards, fmt.Sprintf("%d/%d (%s)", i, ref.Count, joinTargets(want)))
			for _, t := range want {
				missing = append(missing, missingTarget{t, i, "its run is missing from the merge"})
			}
			continue
		}
		has := map[Target]bool{}
		for _, r := range p.Results {
			t := TargetOf(r)
			if !slices.Contains(want, t) {
				return Report{}, fmt.Errorf("merge: %s has records for %s, which is not in its shard %d/%d", p.Dir, t, i, ref.Count)
			}
			if o, ok := owner[t]; ok && o != p.Dir {
				return Report{}, fmt.Errorf("merge: %s has records in both %s and %s", t, o, p.Dir)
			}
			owner[t] = p.Dir
			has[t] = true
		}
		var lacking []Target
		for _, t := range want {
			if !has[t] {
				lacking = append(lacking, t)
				missing = append(missing, missingTarget{t, i, "its shard's run has no records for it (it did not finish)"})
			}
		}
		if len(lacking) > 0 && !opts.AllowPartial {
			return Report{}, fmt.Errorf("merge: %s (shard %d/%d) has no records for %s (finished: %t): run it again, or give --allow-partial",
				p.Dir, i, ref.Count, joinTargets(lacking), p.Run.Finished)
		}
		out.Results = append(out.Results, p.Results...)
	}
	if len(missingShards) > 0 && !opts.AllowPartial {
		what := "shard " + missingShards[0] + " is"
		if len(missingShards) > 1 {
			what = "shards " + strings.Join(missingShards, ", ") + " are"
		}
		return Report{}, fmt.Errorf("merge: %s missing: give its run, or --allow-partial to merge without it", what)
	}
	for _, m := range missing {
		for _, c := range ref.Checks {
			out.Results = append(out.Results, Record{Kernel: m.target.Kernel, Arch: m.target.Arch, Check: c, Status: protocol.StatusError, ErrorKind: KindMissing,
				Message: fmt.Sprintf("no result: shard %d/%d was to run %s, and %s", m.shard, ref.Count, m.target, m.why)})
		}
	}

	run := first.Run
	run.ID = opts.ID
	run.Finished = len(missing) == 0
	run.Targets = slices.Concat(ref.Targets...)
	merged := *ref
	merged.Index, merged.Parts = 0, nil
	var hosts []string
	var end time.Time
	for i := 1; i <= ref.Count; i++ {
		p, ok := byIndex[i]
		if !ok {
			merged.Parts = append(merged.Parts, ShardPart{Index: i})
			continue
		}
		r := p.Run
		merged.Parts = append(merged.Parts, ShardPart{Index: i, ID: r.ID, Host: r.Host, Started: r.Started,
			DurationMS: r.DurationMS, Finished: r.Finished, ExitCode: r.ExitCode})
		run.Finished = run.Finished && r.Finished
		if !slices.Contains(hosts, r.Host) {
			hosts = append(hosts, r.Host)
		}
		if r.Started.Before(run.Started) {
			run.Started = r.Started
		}
		if e := r.Started.Add(time.Duration(r.DurationMS) * time.Millisecond); e.After(end) {
			end = e
		}
	}
	run.Host = strings.Join(hosts, ", ")
	run.DurationMS = max(end.Sub(run.Started).Milliseconds(), 0)
	run.Shard = &merged
	run.ExitCode = ExitCode(out.Results)
	out.Run = run
	return out, nil
}

type missingTarget struct {
	target Target
	shard  int
	why    string
}

// WriteMerge writes rep, a merge of parts, as the new run directory dir:
// each part's VM directories (console logs, artifacts) are copied under the
// same names, so that the records' relative paths hold, and results.json is
// written last. dir must not exist or be empty (CheckNewDir).
func WriteMerge(dir string, rep Report, parts []Part) error {
	if err := CheckNewDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	from := map[string]string{}
	for _, p := range parts {
		entries, err := os.ReadDir(p.Dir)
		if err != nil {
			return fmt.Errorf("read run directory: %w", err)
		}
		for _, e := range entries {
			// VM directories only: results.json, report.html and the
			// like are the merge's to write; a symlink is never followed.
			if !e.IsDir() {
				continue
			}
			if prev, ok := from[e.Name()]; ok {
				return fmt.Errorf("merge: %s and %s both have a directory %s", prev, p.Dir, e.Name())
			}
			from[e.Name()] = p.Dir
			if err := copyTree(filepath.Join(dir, e.Name()), filepath.Join(p.Dir, e.Name())); err != nil {
				return err
			}
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, "results.json"), append(b, '\n'))
}

// copyTree copies the directories and regular files under src to the new
// directory dst. Anything else (a symlink, a device) is refused: the shard
// runs come from CI artifacts, and a link must not pull a file from the
// merging host into the merged run.
func copyTree(dst, src string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		to := filepath.Join(dst, filepath.FromSlash(rel))
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o755); err != nil {
				return fmt.Errorf("copy %s: %w", src, err)
			}
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("copy %s: %s is not a regular file", src, rel)
		}
		in, err := root.Open(filepath.FromSlash(rel))
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", filepath.Join(src, rel), err)
		}
		return nil
	})
}

// CheckNewDir accepts a directory that does not exist or is empty.
func CheckNewDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	switch {
	case len(names) > 0:
		return fmt.Errorf("%s is not empty: give a new directory", dir)
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("read %s: %w", dir, err)
	}
}

func joinTargets(ts []Target) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.String())
	}
	return b.String()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
