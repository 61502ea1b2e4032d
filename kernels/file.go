package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The `file:` source: a kernel a developer built with make. The image and
// config are copied into the cache (kernels/<key>/, keyed by their SHA-256
// and a listing of the modules directory); the modules stay where they are
// and are read from there.

// resolveFile resolves a file: source.
func resolveFile(ctx context.Context, spec FileSpec, arch Arch, opts Options) (*Kernel, error) {
	if spec.Kernel == "" {
		return nil, fmt.Errorf("%w: file: missing kernel (the bzImage, Image or vmlinux make built)", ErrBadInput)
	}
	kernelSHA, err := FileSHA256(spec.Kernel)
	if err != nil {
		return nil, fmt.Errorf("%w: file.kernel: %v", ErrNotFound, err)
	}
	origin := Origin{Type: "file", Files: []File{{Path: spec.Kernel, SHA256: kernelSHA}}}
	shas := []string{kernelSHA}
	if spec.Config != "" {
		sha, err := FileSHA256(spec.Config)
		if err != nil {
			return nil, fmt.Errorf("%w: file.config: %v", ErrNotFound, err)
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
	k, err := opts.Cache.prepareKernel(ctx, key, filepath.Base(spec.Kernel), arch, origin, opts.Logger, func(tmp string) (debContents, error) {
		c := debContents{Vmlinuz: "boot/vmlinuz", Release: release}
		if err := copyFile(spec.Kernel, filepath.Join(tmp, c.Vmlinuz)); err != nil {
			return c, err
		}
		if spec.Config != "" {
			c.Config = "boot/config"
			if err := copyFile(spec.Config, filepath.Join(tmp, c.Config)); err != nil {
				return c, err
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

// copyFile copies a regular file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	_, err = io.Copy(out, in)
	if err = errors.Join(err, out.Close()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
