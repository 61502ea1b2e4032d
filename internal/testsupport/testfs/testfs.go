// Package testfs writes the file trees tests start from. It is for tests
// only.
package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteTree writes files (a path relative to root, and its content) under
// root, making the directories they need; any error fails t.
func WriteTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
