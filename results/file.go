package results

import "github.com/vmrunner/vmrunner/internal/atomicfile"

// fileOptions: results and reports are for everyone who may read the run
// directory (0644), written under a hidden temporary name, and not synced:
// results.json is rewritten after every VM, and a crash loses at most the
// VMs in flight (doc.go).
var fileOptions = atomicfile.Options{Mode: 0o644}

// WriteFileAtomic writes through a temporary file in the same directory, so
// that a reader never sees half a file (atomicfile.WriteFile).
func WriteFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, fileOptions)
}
