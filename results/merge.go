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
	"syscall"
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

// MaxShardBytes bounds the results.json of a shard that report merge reads:
// a larger one is refused before it is read, so that a merge's memory does
// not grow with what a shard's file claims. A shard of the default matrix
// writes tens of kilobytes; a VM's results are bounded at 16 MiB of messages
// and details by the host, so this is several VMs at their bound.
const MaxShardBytes = 64 << 20

// BadShardError is a refusal caused by what a shard holds (a record, a
// file of its directory), not by the merging host: bad input.
type BadShardError struct{ Err error }

func (e *BadShardError) Error() string { return e.Err.Error() }
func (e *BadShardError) Unwrap() error { return e.Err }

func badShard(format string, args ...any) error {
	return &BadShardError{fmt.Errorf(format, args...)}
}

// ReadShard reads the results.json of a shard run, refusing a file that is
// not regular or is larger than MaxShardBytes without reading it.
func ReadShard(path string) (Report, error) {
	var r Report
	f, err := os.Open(path)
	if err != nil {
		return r, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return r, fmt.Errorf("read results: %w", err)
	case !fi.Mode().IsRegular():
		return r, fmt.Errorf("read results: %s is not a regular file", path)
	case fi.Size() > MaxShardBytes:
		return r, fmt.Errorf("read results: %s is %d MiB, more than the %d MiB a shard's results.json may have: it is not a shard vmrunner wrote", path, fi.Size()>>20, MaxShardBytes>>20)
	}
	// Bounded again while reading: the file may grow after the Stat.
	if err := json.NewDecoder(io.LimitReader(f, MaxShardBytes)).Decode(&r); err != nil {
		return r, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}

// Merge checks that parts are shards of one plan (same matrix, lock and
// plan hash, each shard once, every target with records unless
// AllowPartial) and that each shard is whole: one record per check of a VM,
// and records that make the exit code its run recorded. It returns them as
// one report: the records in shard order, the run's start the earliest, its
// end the latest, its exit code folded from all records and the shards' own.
// Every refusal is a one-line error naming the run and the shard.
func Merge(parts []Part, opts MergeOptions) (Report, error) {
	byIndex, err := indexShards(parts)
	if err != nil {
		return Report{}, err
	}
	ref := parts[0].Run.Shard
	records, missing, err := mergeRecords(byIndex, ref, opts)
	if err != nil {
		return Report{}, err
	}
	run := mergeRuns(parts[0].Run, byIndex, ref)
	run.ID = opts.ID
	run.Finished = run.Finished && len(missing) == 0
	run.ExitCode = ExitCode(records)
	for _, p := range parts {
		// A shard's exit code may outrank its records (interrupted, or
		// its report could not be written): the merge keeps it.
		if p.Run.Finished {
			run.ExitCode = WorseExit(run.ExitCode, p.Run.ExitCode)
		}
	}
	return Report{Run: run, Results: records}, nil
}

// indexShards checks that parts are shards of one plan, the first's, each
// given once, and returns them by index.
func indexShards(parts []Part) (map[int]Part, error) {
	if len(parts) == 0 {
		return nil, errors.New("merge: no runs given")
	}
	for _, p := range parts {
		if p.Run.Shard == nil || p.Run.Shard.Index < 1 {
			return nil, fmt.Errorf("merge: %s is not a shard run (its results.json has no shard: run it with vmrunner run --shard I/N)", p.Dir)
		}
	}
	first := parts[0]
	ref := first.Run.Shard
	if len(ref.Targets) != ref.Count || ref.Count < 1 {
		return nil, fmt.Errorf("merge: %s: shard %d/%d lists the targets of %d shards", first.Dir, ref.Index, ref.Count, len(ref.Targets))
	}
	byIndex := map[int]Part{}
	for _, p := range parts {
		s := p.Run.Shard
		switch {
		case s.MatrixHash != ref.MatrixHash:
			return nil, fmt.Errorf("merge: %s and %s ran different matrices (matrix %s, %s): merge shards of one plan", first.Dir, p.Dir, short(ref.MatrixHash), short(s.MatrixHash))
		case s.LockHash != ref.LockHash:
			return nil, fmt.Errorf("merge: %s and %s ran with different lock files (lock %s, %s): merge shards of one plan", first.Dir, p.Dir, cmp.Or(short(ref.LockHash), "none"), cmp.Or(short(s.LockHash), "none"))
		case s.Plan != ref.Plan || s.Count != ref.Count:
			return nil, fmt.Errorf("merge: %s and %s come from different plans (plan %s of %d shards, %s of %d): the same matrix, lock, --timings and --runner make the same plan",
				first.Dir, p.Dir, short(ref.Plan), ref.Count, short(s.Plan), s.Count)
		case s.Index > s.Count:
			return nil, fmt.Errorf("merge: %s: shard %d/%d is out of range", p.Dir, s.Index, s.Count)
		}
		if prev, ok := byIndex[s.Index]; ok {
			return nil, fmt.Errorf("merge: shard %d/%d is given twice: %s and %s", s.Index, s.Count, prev.Dir, p.Dir)
		}
		byIndex[s.Index] = p
	}
	return byIndex, nil
}

// mergeRecords returns the shards' records in shard order, then an error
// record of kind KindMissing for each check of each target without records
// (missing), refused unless opts.AllowPartial.
func mergeRecords(byIndex map[int]Part, ref *Shard, opts MergeOptions) ([]Record, []missingTarget, error) {
	records := []Record{}
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
		lacking, err := shardTargets(p, i, ref, owner, opts)
		if err != nil {
			return nil, nil, err
		}
		missing = append(missing, lacking...)
		records = append(records, p.Results...)
	}
	if len(missingShards) > 0 && !opts.AllowPartial {
		what := "shard " + missingShards[0] + " is"
		if len(missingShards) > 1 {
			what = "shards " + strings.Join(missingShards, ", ") + " are"
		}
		return nil, nil, fmt.Errorf("merge: %s missing: give its run, or --allow-partial to merge without it", what)
	}
	for _, m := range missing {
		for _, c := range ref.Checks {
			records = append(records, Record{Kernel: m.target.Kernel, Arch: m.target.Arch, Check: c, Status: protocol.StatusError, ErrorKind: KindMissing,
				Message: fmt.Sprintf("no result: shard %d/%d was to run %s, and %s", m.shard, ref.Count, m.target, m.why)})
		}
	}
	return records, missing, nil
}

// shardTargets checks the records of p, shard i: whole, for its own
// targets only, none another shard has (owner, updated). It returns the
// targets of the shard it has no records for, refused unless
// opts.AllowPartial.
func shardTargets(p Part, i int, ref *Shard, owner map[Target]string, opts MergeOptions) ([]missingTarget, error) {
	if err := checkShardRecords(p); err != nil {
		return nil, err
	}
	want := ref.Targets[i-1]
	has := map[Target]bool{}
	for _, r := range p.Results {
		t := TargetOf(r)
		if !slices.Contains(want, t) {
			return nil, fmt.Errorf("merge: %s has records for %s, which is not in its shard %d/%d", p.Dir, t, i, ref.Count)
		}
		if o, ok := owner[t]; ok && o != p.Dir {
			return nil, fmt.Errorf("merge: %s has records in both %s and %s", t, o, p.Dir)
		}
		owner[t] = p.Dir
		has[t] = true
	}
	var lacking []Target
	var missing []missingTarget
	for _, t := range want {
		if !has[t] {
			lacking = append(lacking, t)
			missing = append(missing, missingTarget{t, i, "its shard's run has no records for it (it did not finish)"})
		}
	}
	if len(lacking) > 0 && !opts.AllowPartial {
		return nil, fmt.Errorf("merge: %s (shard %d/%d) has no records for %s (finished: %t): run it again, or give --allow-partial",
			p.Dir, i, ref.Count, joinTargets(lacking), p.Run.Finished)
	}
	return missing, nil
}

// mergeRuns is the run of the merge, from first's: its shard's parts,
// its hosts, the earliest start and the latest end of the shards given,
// finished if they all are.
func mergeRuns(first RunInfo, byIndex map[int]Part, ref *Shard) RunInfo {
	run := first
	run.Finished = true
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
	return run
}

// checkShardRecords refuses a shard with two records for one check of a
// VM, or whose records do not make the exit code its run recorded: a record
// changed or dropped after the run (a fail made a pass) must not pass
// through a merge unseen. An unfinished run recorded no exit code.
func checkShardRecords(p Part) error {
	type key struct {
		t     Target
		check string
	}
	seen := make(map[key]int, len(p.Results))
	for i, r := range p.Results {
		k := key{TargetOf(r), r.Check}
		if j, ok := seen[k]; ok {
			return badShard("merge: %s has two records for %s %s (records %d and %d): a shard has one record per check of each VM", p.Dir, k.t, k.check, j+1, i+1)
		}
		seen[k] = i
	}
	if !p.Run.Finished {
		return nil
	}
	code, fold := p.Run.ExitCode, ExitCode(p.Results)
	switch {
	case code == fold, code == ExitInterrupted:
		return nil
	case code == ExitInfra && fold == ExitOK:
		return nil // its report could not be written: run says so
	}
	if rank(fold) > rank(code) {
		for i, r := range p.Results {
			if ExitCode([]Record{r}) == fold {
				return badShard("merge: %s: record %d (%s %s, %s) makes exit code %d, but its run.exit_code is %d: the shard's results.json was changed; run the shard again", p.Dir, i+1, TargetOf(r), r.Check, r.Status, fold, code)
			}
		}
	}
	return badShard("merge: %s: its run.exit_code is %d, but its records make exit code %d: the shard's results.json was changed; run the shard again", p.Dir, code, fold)
}

type missingTarget struct {
	target Target
	shard  int
	why    string
}

// WriteMerge writes rep, a merge of parts, as the new run directory dir:
// each part's VM directories (console logs, artifacts) are copied under the
// same names, so that the records' relative paths hold, then results.json,
// then whatever finish writes into the directory it is given (the report
// page). All of it goes to a temporary directory beside dir, renamed to dir
// at the end: a refusal or a failure leaves no dir behind. dir must not
// exist or be empty (CheckNewDir). A shard's file that is not a directory
// or a regular file, or a VM directory two shards have, is a
// *BadShardError.
func WriteMerge(dir string, rep Report, parts []Part, finish func(tmp string) error) (err error) {
	if err := CheckNewDir(dir); err != nil {
		return err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".merge-")
	if err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
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
				return badShard("merge: %s and %s both have a directory %s", prev, p.Dir, e.Name())
			}
			from[e.Name()] = p.Dir
			if err := copyTree(filepath.Join(tmp, e.Name()), filepath.Join(p.Dir, e.Name())); err != nil {
				return err
			}
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(tmp, "results.json"), append(b, '\n')); err != nil {
		return err
	}
	if finish != nil {
		if err := finish(tmp); err != nil {
			return err
		}
	}
	// rename(2) replaces an empty directory: dir may exist, empty (os.Rename
	// refuses any existing directory).
	if err := syscall.Rename(tmp, dir); err != nil {
		return fmt.Errorf("create run directory: rename %s: %w", dir, err)
	}
	return nil
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
			return badShard("copy %s: %s is not a regular file (a shard's run directory holds directories and files only)", src, rel)
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
