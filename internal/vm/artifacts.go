package vm

import (
	"fmt"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/internal/text"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// hostFiles are the names vmrunner itself writes in a VM directory: no guest
// artifact may be, or be under, a file or directory of these names.
var hostFiles = []string{qemu.FileConsole, qemu.FileQEMULog, qemu.FileCmdline}

// reservedName reports whether an artifact's first path segment is one of
// the host's own files (console.attemptN.log included).
func reservedName(first string) bool {
	for _, f := range hostFiles {
		if first == f {
			return true
		}
	}
	return strings.HasPrefix(first, "console.")
}

// artifactSaver writes guest artifacts under a VM directory as they arrive,
// bounded in number and total size. Names were validated by the protocol
// decoder (protocol.ValidArtifactName); the check here keeps that promise
// local, and refuses the host's own names.
type artifactSaver struct {
	dir      string
	maxCount int
	maxBytes int64
	count    int
	bytes    int64
	saved    map[string][]string
}

// save writes art. Errors that are the guest's fault match errProtocol.
func (a *artifactSaver) save(art *protocol.Artifact) error {
	if !protocol.ValidArtifactName(art.Name) {
		return violation("invalid artifact name %q", text.Truncate(art.Name, 64))
	}
	if first, _, _ := strings.Cut(art.Name, "/"); reservedName(first) {
		return violation("artifact %q would overwrite the host's %s", art.Name, first)
	}
	if a.count >= a.maxCount {
		return violation("the guest sent more than %d artifacts", a.maxCount)
	}
	if a.bytes+int64(len(art.Data)) > a.maxBytes {
		return violation("the guest's artifacts exceed %d MiB", a.maxBytes>>20)
	}
	path := filepath.Join(a.dir, filepath.FromSlash(art.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save artifact: %w", err)
	}
	if err := results.WriteFileAtomic(path, []byte(art.Data)); err != nil {
		return fmt.Errorf("save artifact: %w", err)
	}
	a.count++
	a.bytes += int64(len(art.Data))
	if a.saved == nil {
		a.saved = map[string][]string{}
	}
	a.saved[art.Check] = append(a.saved[art.Check], art.Name)
	return nil
}
