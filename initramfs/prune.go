package initramfs

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gofrs/flock"
)

// tempArchive matches the temporaries Build writes before renaming them
// into place: <archive>.<random>.tmp, and <archive>.sha256.tmp for the seal.
var tempArchive = regexp.MustCompile(`^(.+\.cpio)\.([0-9]+|sha256)\.tmp$`)

// Prune cleans <cacheDir>/initramfs/: temporaries left by a builder that
// died (SIGKILL) are removed once their archive's lock is free, which a
// live builder holds while it writes; all removes every archive too, each
// under its lock (one being built is left alone). dryRun only reports.
// Paths are relative to cacheDir.
func Prune(cacheDir string, all, dryRun bool) ([]fileutil.Removal, error) {
	dir := filepath.Join(cacheDir, "initramfs")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune initramfs: %w", err)
	}
	// Group each archive with its seal, lock and temporaries.
	groups := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		var archive string
		switch m := tempArchive.FindStringSubmatch(name); {
		case m != nil:
			archive = m[1]
		case strings.HasSuffix(name, ".cpio"):
			archive = name
		case strings.HasSuffix(name, ".cpio.sha256"), strings.HasSuffix(name, ".cpio.lock"):
			archive = name[:strings.LastIndexByte(name, '.')]
		default:
			continue // not Build's
		}
		groups[archive] = append(groups[archive], name)
	}
	var removed []fileutil.Removal
	for archive, names := range groups {
		var victims []string
		for _, n := range names {
			if all || tempArchive.MatchString(n) {
				victims = append(victims, n)
			}
		}
		if len(victims) == 0 {
			continue
		}
		lock := flock.New(filepath.Join(dir, archive+".lock"))
		ok, err := lock.TryLock()
		if err != nil {
			return removed, fmt.Errorf("prune initramfs: %w", err)
		}
		if !ok {
			continue // a live builder owns them
		}
		for _, n := range victims {
			p := filepath.Join(dir, n)
			fi, err := os.Lstat(p)
			if err != nil {
				continue
			}
			if !dryRun {
				if err := os.Remove(p); err != nil {
					_ = lock.Unlock()
					return removed, fmt.Errorf("prune initramfs: %w", err)
				}
			}
			removed = append(removed, fileutil.Removal{Path: filepath.Join("initramfs", n), Size: fi.Size()})
		}
		_ = lock.Unlock()
	}
	return removed, nil
}
