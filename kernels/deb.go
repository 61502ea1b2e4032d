package kernels

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"pault.ag/go/debian/deb"
)

// debContents is what extractDeb found, relative to the extraction dir.
type debContents struct {
	Vmlinuz string // boot/vmlinuz-<release>
	Config  string // boot/config-<release>, or ""
	Modules string // lib/modules/<release>, or ""
	Release string
	BTF     string // boot/btf-<release>: the kernel's BTF as a separate file, or ""
}

// extractDeb unpacks from a kernel .deb what booting needs into dir:
// boot/vmlinuz-*, boot/config-* and lib/modules/<release>/ (moved there
// from usr/lib/modules in merged-/usr packages). Module files are kept as
// shipped (.ko, .ko.xz, .ko.zst...). Nothing outside dir is written:
// member names that leave it, and links, are skipped.
func extractDeb(ctx context.Context, debPath, dir string) (debContents, error) {
	c, err := extractDebMembers(ctx, debPath, dir)
	if err != nil {
		return debContents{}, err
	}
	if c.Vmlinuz == "" {
		return debContents{}, fmt.Errorf("extract %s: %w: no boot/vmlinuz-* in the package", debPath, ErrNotAKernel)
	}
	return c, nil
}

// extractDebMembers is extractDeb for a package that may hold only part of
// a kernel (Ubuntu splits image and modules): Vmlinuz may be "".
func extractDebMembers(ctx context.Context, debPath, dir string) (debContents, error) {
	d, closer, err := deb.LoadFile(debPath)
	if err != nil {
		return debContents{}, fmt.Errorf("open %s: %w: not a .deb: %v", debPath, ErrNotAKernel, err)
	}
	defer func() { _ = closer() }()

	var c debContents
	for {
		if err := ctx.Err(); err != nil {
			return debContents{}, err
		}
		hdr, err := d.Data.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return debContents{}, fmt.Errorf("read %s data.tar%s: %w", filepath.Base(debPath), d.DataExt, err)
		}
		if err := c.add(dir, hdr.Name, hdr.Typeflag == tar.TypeDir, hdr.Typeflag == tar.TypeReg, d.Data); err != nil {
			return debContents{}, fmt.Errorf("extract %s: %w", filepath.Base(debPath), err)
		}
	}
	if c.Release == "" && c.Vmlinuz != "" {
		c.Release = strings.TrimPrefix(strings.TrimPrefix(c.Vmlinuz, "boot/vmlinuz-"), "boot/vmlinux-")
	}
	return c, nil
}

// add extracts one member of a package's payload (a .deb's data.tar, an
// RPM's cpio) into dir if keepDebMember keeps it, and records what it is.
// Only directories and regular files are written: symlinks (build/,
// source/) point at headers vmrunner does not need.
func (c *debContents) add(dir, member string, isDir, isReg bool, r io.Reader) error {
	name := keepDebMember(member)
	if name == "" || (!isDir && !isReg) {
		return nil
	}
	target := filepath.Join(dir, filepath.FromSlash(name))
	if isDir {
		return os.MkdirAll(target, 0o755)
	}
	if err := writeMember(target, r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case strings.HasPrefix(name, "boot/vmlinuz-") || strings.HasPrefix(name, "boot/vmlinux-"):
		if c.Vmlinuz != "" {
			return fmt.Errorf("two kernels: %s and %s", c.Vmlinuz, name)
		}
		c.Vmlinuz = name
	case strings.HasPrefix(name, "boot/config-"):
		c.Config = name
	case strings.HasPrefix(name, "lib/modules/"):
		rel := strings.SplitN(name, "/", 4)[2]
		if c.Release != "" && c.Release != rel {
			return fmt.Errorf("modules for two releases: %s and %s", c.Release, rel)
		}
		c.Release = rel
		c.Modules = "lib/modules/" + rel
	}
	return nil
}

// keepDebMember maps a data.tar member name to where it goes, or "" to
// skip it.
func keepDebMember(name string) string {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	name = strings.TrimPrefix(name, "/")
	if !filepath.IsLocal(name) {
		return ""
	}
	if rest, ok := strings.CutPrefix(name, "usr/lib/modules/"); ok {
		name = "lib/modules/" + rest
	}
	// sid's split packages keep the image and the config beside the
	// modules: lib/modules/<release>/vmlinuz (linux-binary-*, signed),
	// vmlinuz.unsigned (linux-binary-unsigned-*) and config (linux-base-*).
	if parts := strings.Split(name, "/"); len(parts) == 4 && parts[0] == "lib" && parts[1] == "modules" {
		switch parts[3] {
		case "vmlinuz", "vmlinuz.unsigned":
			return "boot/vmlinuz-" + parts[2]
		case "config":
			return "boot/config-" + parts[2]
		case "System.map":
			return ""
		}
	}
	// SUSE's arm64 kernel-default names its image boot/Image-<release>.
	if rest, ok := strings.CutPrefix(name, "boot/Image-"); ok && !strings.Contains(rest, "/") {
		return "boot/vmlinuz-" + rest
	}
	switch {
	case strings.HasPrefix(name, "boot/vmlinuz-"), strings.HasPrefix(name, "boot/vmlinux-"),
		strings.HasPrefix(name, "boot/config-"):
		if strings.Count(name, "/") != 1 {
			return ""
		}
		return name
	case strings.HasPrefix(name, "lib/modules/") && strings.Count(name, "/") >= 2:
		return name
	}
	return ""
}

// writeMember writes one regular file from r.
func writeMember(target string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
