package initramfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
	"github.com/u-root/u-root/pkg/cpio"
)

// File is a host file added to an initramfs at Path (absolute, in the
// guest), for example a BPF object for the verifier check.
type File struct {
	Path   string      // in the guest: /vmrunner/objects/probes.o
	Source string      // on the host
	Mode   os.FileMode // permission bits; 0 means 0644
}

// withExtra returns the archive for opts: the base archive (cached, built
// without opts.Extra) followed by a small archive of the extra files. Linux
// unpacks concatenated newc archives in order, so the base archive is
// reused as it is. The combined archive is cached too, keyed by the base
// archive's name and the extra files' paths, modes and contents.
func withExtra(ctx context.Context, opts Options) (string, error) {
	extra := opts.Extra
	opts.Extra = nil
	base, err := Build(ctx, opts)
	if err != nil {
		return "", err
	}

	type file struct {
		File
		data []byte
	}
	files := make([]file, 0, len(extra))
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.LittleEndian, uint64(len(b))) // a hash never fails to write
		h.Write(b)
	}
	field([]byte(filepath.Base(base)))
	for _, f := range extra {
		clean := path.Clean("/" + f.Path)
		if !path.IsAbs(f.Path) || clean != f.Path || clean == "/" || strings.HasPrefix(clean, "/init") {
			return "", fmt.Errorf("build initramfs: extra file path %q: expected a clean absolute path other than /init", f.Path)
		}
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return "", fmt.Errorf("build initramfs: read extra file: %w", err)
		}
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		field([]byte(f.Path))
		_ = binary.Write(h, binary.LittleEndian, uint32(f.Mode.Perm()))
		field(data)
		files = append(files, file{f, data})
	}
	archive := filepath.Join(filepath.Dir(base), "x-"+hex.EncodeToString(h.Sum(nil))+".cpio")
	if intact(archive) {
		return archive, nil
	}

	lock := flock.New(archive + ".lock")
	locked, err := lock.TryLockContext(ctx, lockRetry)
	if err != nil || !locked {
		return "", fmt.Errorf("build initramfs: lock %s: %w", lock.Path(), errorsOr(err, ctx.Err()))
	}
	defer func() { _ = lock.Unlock() }()
	if intact(archive) {
		return archive, nil
	}

	tmp, err := os.CreateTemp(filepath.Dir(archive), filepath.Base(archive)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	write := func() error {
		defer tmp.Close()
		in, err := os.Open(base)
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := io.Copy(tmp, in); err != nil {
			return err
		}
		bw := bufio.NewWriter(tmp)
		a := &archiveWriter{w: cpio.Newc.Writer(bw), dirs: map[string]bool{}}
		for _, f := range files {
			a.add(cpio.StaticRecord(f.data, cpio.Info{Name: f.Path, Mode: cpio.S_IFREG | uint64(f.Mode.Perm())}))
		}
		if a.err != nil {
			return a.err
		}
		if err := cpio.WriteTrailer(a.w); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := tmp.Chmod(0o644); err != nil {
			return err
		}
		return tmp.Sync()
	}
	if err := write(); err != nil {
		return "", fmt.Errorf("build initramfs: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), archive); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	if err := seal(archive); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	return archive, nil
}

func errorsOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}
