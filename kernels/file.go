package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/internal/inputfile"
)

// The `file:` source: a kernel a developer built with make. The image and
// config are copied into the cache (kernels/<key>/, keyed by their SHA-256
// and a listing of the modules directory); the modules stay where they are
// and are read from there.

// Bounds of the files a file: source names. A vmlinux with debug info is
// hundreds of megabytes; a .config a few hundred kilobytes.
const (
	maxKernelFile = 2 << 30
	maxConfigFile = 16 << 20
)

// inputError says what is wrong with a file the user named: missing, not
// a regular file (a device, a FIFO) or too large, all bad input. Anything
// else (the read interrupted, an I/O error) stays what it is.
func inputError(field string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", field, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: %v", ErrNotFound, field, err)
	case errors.Is(err, inputfile.ErrNotRegular), errors.Is(err, inputfile.ErrTooLarge), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s: %v", ErrBadInput, field, err)
	}
	return fmt.Errorf("%s: %w", field, err)
}

// resolveFile resolves a file: source.
func resolveFile(ctx context.Context, spec FileSpec, arch Arch, opts Options) (*Kernel, error) {
	if spec.Kernel == "" {
		return nil, fmt.Errorf("%w: file: missing kernel (the bzImage, Image or vmlinux make built)", ErrBadInput)
	}
	// Look before reading: a special file, a huge file or one that is no
	// kernel for arch is refused before it is hashed and copied.
	if _, err := inputfile.Check(spec.Kernel, maxKernelFile); err != nil {
		return nil, inputError("file.kernel", err)
	}
	if spec.Config != "" {
		if _, err := inputfile.Check(spec.Config, maxConfigFile); err != nil {
			return nil, inputError("file.config", err)
		}
	}
	if _, err := checkArch(spec.Kernel, "file.kernel "+spec.Kernel, arch); err != nil {
		return nil, err
	}
	kernelSHA, err := inputfile.SHA256(ctx, spec.Kernel, maxKernelFile)
	if err != nil {
		return nil, inputError("file.kernel", err)
	}
	origin := Origin{Type: "file", Files: []File{{Path: spec.Kernel, SHA256: kernelSHA}}}
	shas := []string{kernelSHA}
	if spec.Config != "" {
		sha, err := inputfile.SHA256(ctx, spec.Config, maxConfigFile)
		if err != nil {
			return nil, inputError("file.config", err)
		}
		origin.Files = append(origin.Files, File{Path: spec.Config, SHA256: sha})
		shas = append(shas, sha)
	}
	release := ""
	if spec.Modules != "" {
		if _, err := os.Stat(filepath.Join(spec.Modules, "modules.order")); err != nil {
			return nil, fmt.Errorf("%w: file.modules: %s has no modules.order; give lib/modules/<release> as installed by make modules_install INSTALL_MOD_PATH=DIR", ErrNotFound, spec.Modules)
		}
		sha, err := treeSHA256(spec.Modules)
		if err != nil {
			return nil, fmt.Errorf("file.modules: %w", err)
		}
		origin.Files = append(origin.Files, File{Path: spec.Modules, SHA256: sha})
		shas = append(shas, sha)
		release = filepath.Base(spec.Modules)
	}
	key := combinedKey("file", shas...)
	k, err := opts.Cache.cacheKernel(ctx, key, filepath.Base(spec.Kernel), arch, origin, opts.Logger, func(tmp string) (debContents, error) {
		c := debContents{Vmlinuz: "boot/vmlinuz", Release: release}
		if err := copyInput(ctx, spec.Kernel, filepath.Join(tmp, c.Vmlinuz), maxKernelFile); err != nil {
			return c, inputError("file.kernel", err)
		}
		if spec.Config != "" {
			c.Config = "boot/config"
			if err := copyInput(ctx, spec.Config, filepath.Join(tmp, c.Config), maxConfigFile); err != nil {
				return c, inputError("file.config", err)
			}
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	if spec.Modules != "" {
		k.Modules = spec.Modules
	}
	return k, nil
}

// treeSHA256 identifies a directory by the names, sizes and modification
// times of its files: hashing hundreds of megabytes of modules on every
// run would cost seconds, and `make modules_install` rewrites what changed.
func treeSHA256(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%v\n", rel, info.Size(), info.ModTime().UnixNano(), d.Type())
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyInput copies a regular file of at most limit bytes into the cache.
func copyInput(ctx context.Context, src, dst string, limit int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return inputfile.Copy(ctx, src, dst, limit, 0o644)
}
