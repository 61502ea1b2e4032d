// Package fileutil holds small file helpers shared by the caches (kernels,
// initramfs, snapshot) and the host: a file's SHA-256 and the record of
// what a prune removed. It depends on nothing of vmrunner.
package fileutil

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// FileSHA256 returns the hex SHA256 of a local file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Removal is one cache entry a prune removed, or would remove (the
// kernel, initramfs and snapshot caches and the socket directories).
type Removal struct {
	Path string // relative to the cache directory: kernels/<key>, blobs/sha256/<sha>, build
	Size int64  // bytes
}
