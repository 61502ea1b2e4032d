package protocol

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/vmrunner/vmrunner/internal/text"
)

// A plan's files (BPF objects, a Beyla binary) travel after the plan, in
// file messages, rather than in the initramfs: a snapshot of a ready guest
// then serves every object set. The plan lists each file with its size and
// SHA-256; the host sends each file's chunks in order, files in the plan's
// order; the agent writes them beside their final path, checks size and
// SHA-256, and only then moves them into place.

// GuestFilesRoot is the directory a plan's files go under in the guest.
const GuestFilesRoot = "/vmrunner/"

// Bounds of a plan's files. The guest holds them in memory (its root file
// system is the initramfs), so anything near these needs a VM with memory
// to match.
const (
	MaxFiles      = 4096
	MaxFileSize   = 512 << 20 // one file
	MaxFilesSize  = 1 << 30   // all files of a plan
	FileChunkSize = 256 << 10 // the data of one file message
)

// File modes a plan may ask for.
const (
	FileMode     = 0o644
	FileModeExec = 0o755
)

// FileSpec is one file the plan's checks need in the guest.
type FileSpec struct {
	Path   string `json:"path"`   // absolute, under GuestFilesRoot (ValidGuestFilePath)
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // lowercase hex
	Mode   uint32 `json:"mode"`   // FileMode or FileModeExec
}

// FileChunk is a piece of a plan's file, at Offset; chunks of a file come
// in order, each with 1 to FileChunkSize bytes (a file of 0 bytes has none).
//
// Its data is not in the JSON: Size raw bytes follow the message's line,
// then a newline, and the Decoder reads them into Data (the Encoder writes
// them and sets Size). A JSON string of base64 costs encoding/json a byte at a time, 33
// MB/s natively and some 5 MB/s in a guest under TCG; raw, a chunk costs
// one copy.
type FileChunk struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Size   int    `json:"size"`
	Data   []byte `json:"-"`

	// pooled is Data's buffer when the Decoder took it from chunkPool.
	pooled *[]byte
}

// chunkPool holds the buffers the Decoder reads file data into: a guest
// under emulation spends as long zeroing a fresh buffer as filling it, and
// a file of tens of MB would be as many of them to collect.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, FileChunkSize)
	return &b
}}

// Release gives the chunk's data buffer back to the Decoder's pool; Data
// must not be used after. It is optional: a chunk not released is
// garbage like any other.
func (c *FileChunk) Release() {
	if c.pooled != nil {
		chunkPool.Put(c.pooled)
	}
	c.pooled, c.Data = nil, nil
}

// Bounds of a plan file's path. The host names these paths (a share's
// tree keeps its file names), so the guest checks only that they stay
// under GuestFilesRoot and are plain: no "." or ".." segment, no empty one,
// no control character.
const (
	maxGuestPathBytes    = 1024
	maxGuestPathSegments = 64
)

// ValidGuestFilePath reports whether p may name a plan's file in the guest:
// GuestFilesRoot then 1 to 64 segments, none empty, "." or "..", without
// control characters, at most 1024 bytes in all. Such a path cannot leave
// GuestFilesRoot.
func ValidGuestFilePath(p string) bool {
	rest, ok := strings.CutPrefix(p, GuestFilesRoot)
	if !ok || rest == "" || len(p) > maxGuestPathBytes || !utf8.ValidString(p) {
		return false
	}
	segs := strings.Split(rest, "/")
	if len(segs) > maxGuestPathSegments {
		return false
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return false
		}
	}
	return true
}

// validateFiles checks a plan's file and directory lists: paths valid and
// distinct, no file inside another, sizes and count within the bounds.
func validateFiles(files []FileSpec, dirs []string) error {
	if len(files)+len(dirs) > MaxFiles {
		return fmt.Errorf("%d files and directories, more than %d", len(files)+len(dirs), MaxFiles)
	}
	seen := make(map[string]bool, len(files))
	isDir := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		if !ValidGuestFilePath(d) {
			return fmt.Errorf("invalid directory path %q", text.Truncate(d, 64))
		}
		isDir[d] = true
	}
	var total int64
	for _, f := range files {
		switch {
		case !ValidGuestFilePath(f.Path):
			return fmt.Errorf("invalid file path %q", text.Truncate(f.Path, 64))
		case seen[f.Path]:
			return fmt.Errorf("file %s listed twice", f.Path)
		case isDir[f.Path]:
			return fmt.Errorf("file %s is also listed as a directory", f.Path)
		case f.Size < 0 || f.Size > MaxFileSize:
			return fmt.Errorf("file %s: size %d out of 0..%d", f.Path, f.Size, MaxFileSize)
		case !text.IsSHA256Hex(f.SHA256):
			return fmt.Errorf("file %s: sha256 is not 64 lowercase hex digits", f.Path)
		case f.Mode != FileMode && f.Mode != FileModeExec:
			return fmt.Errorf("file %s: mode %#o, want %#o or %#o", f.Path, f.Mode, FileMode, FileModeExec)
		}
		seen[f.Path] = true
		if total += f.Size; total > MaxFilesSize {
			return fmt.Errorf("files add up to more than %d bytes", MaxFilesSize)
		}
	}
	// A file may not be a directory of another file or of a directory:
	// /vmrunner/a and /vmrunner/a/b.
	inside := func(p string) error {
		for dir := p; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < len(GuestFilesRoot) {
				break
			}
			if dir = dir[:i]; seen[dir] {
				return fmt.Errorf("%s is inside file %s", p, dir)
			}
		}
		return nil
	}
	for p := range seen {
		if err := inside(p); err != nil {
			return err
		}
	}
	for p := range isDir {
		if err := inside(p); err != nil {
			return err
		}
	}
	return nil
}

func (c *FileChunk) validate() error {
	switch {
	case !ValidGuestFilePath(c.Path):
		return fmt.Errorf("invalid file path %q", text.Truncate(c.Path, 64))
	case c.Offset < 0 || c.Offset >= MaxFileSize:
		return fmt.Errorf("offset %d out of range", c.Offset)
	case c.Size <= 0:
		return errors.New("empty chunk")
	case c.Size > FileChunkSize:
		return fmt.Errorf("chunk of %d bytes, more than %d", c.Size, FileChunkSize)
	}
	return nil
}
