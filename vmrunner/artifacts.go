package vmrunner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// plannedChecks returns a predicate accepting the checks of the plan and
// their sub-results ("verifier" plans "verifier/probes/loop").
func plannedChecks(p protocol.Plan) func(string) bool {
	names := map[string]bool{}
	for _, c := range p.Checks {
		names[c.Name] = true
	}
	return func(check string) bool {
		if len(check) > 512 {
			return false
		}
		top, _, _ := strings.Cut(check, "/")
		return names[top]
	}
}

// artifactSaver writes guest artifacts under a VM directory, bounded in
// number and total size. Names were validated by the protocol decoder
// (protocol.ValidArtifactName); the check here keeps that promise local.
type artifactSaver struct {
	dir   string
	bytes int
	saved map[string][]string
	count int
}

func (a *artifactSaver) save(art *protocol.Artifact) error {
	if !protocol.ValidArtifactName(art.Name) {
		return fmt.Errorf("save artifact: invalid name %q", truncate(art.Name, 64))
	}
	if a.count >= maxArtifacts || a.bytes+len(art.Data) > maxArtifactSize {
		return errors.New("save artifact: VM artifact limit reached")
	}
	path := filepath.Join(a.dir, filepath.FromSlash(art.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save artifact: %w", err)
	}
	if err := results.WriteFileAtomic(path, []byte(art.Data)); err != nil {
		return fmt.Errorf("save artifact: %w", err)
	}
	a.count++
	a.bytes += len(art.Data)
	if a.saved == nil {
		a.saved = map[string][]string{}
	}
	a.saved[art.Check] = append(a.saved[art.Check], art.Name)
	return nil
}
