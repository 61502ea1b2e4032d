package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/internal/text"
)

// This file holds the `deb:` source (kernel .debs by URL or local file) and
// what every non-Debian source shares: verified blob downloads and the
// making of kernels/<key>/.

// combinedKey identifies a kernel made of several inputs.
func combinedKey(kind string, shas ...string) string {
	if kind == "deb" && len(shas) == 1 {
		return shas[0] // the same directory as the Debian source uses
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", kind)
	for _, s := range shas {
		fmt.Fprintf(h, "%s\n", s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fetchBlob makes sure blobs/sha256/<sha> holds url's body and returns its
// path. The SHA-256 alone vouches for the body.
func (c *Cache) fetchBlob(ctx context.Context, f *fetcher, url, sha string) (string, error) {
	blob := c.blobPath(sha)
	if checkBlob(blob, sha) == nil {
		return blob, nil
	}
	unlock, err := c.Lock(ctx, "blob-"+sha)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := checkBlob(blob, sha); err == nil {
		return blob, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		f.log.Warn("cached file damaged, downloading again", "path", blob, "error", err)
		os.Remove(blob)
	}
	f.log.Info("downloading", "url", url)
	err = f.download(ctx, url, blob, sha, -1)
	if errors.Is(err, errHTTPNotFound) {
		return "", fmt.Errorf("%w: %s (404)", ErrNotFound, url)
	}
	if err != nil {
		return "", err
	}
	return blob, nil
}

// cacheKernel makes kernels/<key>/ unless it is there: fill writes the
// kernel's files into a temporary directory and says where they are; the
// image is then checked for arch, the fast-boot image derived, the record
// written and the directory renamed into place. name says where the files
// come from in errors.
func (c *Cache) cacheKernel(ctx context.Context, key, name string, arch Arch, origin Origin, log *slog.Logger,
	fill func(tmp string) (debContents, error)) (*Kernel, error) {
	unlock, err := c.Lock(ctx, "blob-"+key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	k, err := c.loadKernel(key)
	switch {
	case err == nil:
		if k.Arch != arch {
			return nil, fmt.Errorf("check %s: %w: found a %s kernel, want %s", name, ErrWrongArch, k.Arch, arch)
		}
		k.Origin = origin
		return k, nil
	case errors.Is(err, ErrCacheDamaged):
		log.Warn("cached kernel damaged, extracting it again", "problem", err)
	}

	final := c.kernelDir(key)
	removeStaleTemps(final)
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), filepath.Base(tempPrefix(final))+"*")
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename

	start := time.Now()
	contents, err := fill(tmp)
	if err != nil {
		return nil, err
	}
	if contents.Vmlinuz == "" {
		return nil, fmt.Errorf("prepare %s: %w: no kernel image (boot/vmlinuz*) in it", name, ErrNotAKernel)
	}
	unc, err := deriveImages(tmp, contents.Vmlinuz, name, arch, log)
	if err != nil {
		return nil, err
	}
	if contents.Release == "" {
		contents.Release = imageRelease(tmp, contents.Vmlinuz, unc)
	}
	rec := Kernel{Arch: arch, Release: contents.Release, Image: contents.Vmlinuz, Uncompressed: unc,
		Config: contents.Config, Modules: contents.Modules, BTF: contents.BTF, SHA256: key, Origin: origin}
	if err := writeJSONAtomic(filepath.Join(tmp, kernelRecord), &rec); err != nil {
		return nil, err
	}
	if err := writeSeal(tmp); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	log.Info("kernel ready", "source", origin.Type, "release", rec.Release, "duration", time.Since(start).Round(time.Millisecond))
	k, err = c.loadKernel(key)
	if err != nil {
		return nil, err
	}
	k.Origin = origin
	return k, nil
}

// imageRelease finds the release of a kernel without modules: the bzImage
// header, else the "Linux version X " banner in the uncompressed image.
func imageRelease(dir, image, uncompressed string) string {
	if info, err := Inspect(filepath.Join(dir, image)); err == nil && info.Release != "" {
		return info.Release
	}
	if uncompressed == "" {
		return ""
	}
	rel, _ := findBanner(filepath.Join(dir, uncompressed))
	return rel
}

// findBanner scans a file for the kernel's "Linux version <release> ("
// banner and returns the release.
func findBanner(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const marker = "Linux version "
	buf := make([]byte, 1<<20)
	var carry []byte
	for {
		n, err := f.Read(buf)
		data := append(carry, buf[:n]...)
		for off := 0; ; {
			i := strings.Index(string(data[off:]), marker)
			if i < 0 {
				break
			}
			rest := data[off+i+len(marker):]
			end := strings.IndexAny(string(rest[:min(len(rest), 130)]), " \x00")
			if end > 0 && validReleaseString(string(rest[:end])) && strings.Contains(string(rest[end:min(len(rest), end+3)]), "(") {
				return string(rest[:end]), nil
			}
			off += i + 1
		}
		if err != nil {
			if err == io.EOF {
				return "", nil
			}
			return "", err
		}
		carry = append([]byte(nil), data[max(0, len(data)-200):]...)
	}
}

// validReleaseString accepts what uname -r can look like.
func validReleaseString(s string) bool {
	if s == "" || len(s) > 128 || s[0] < '0' || s[0] > '9' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+_~") == ""
}

// mergeContents adds what one package held to what earlier ones did.
func mergeContents(into *debContents, c debContents, name string) error {
	if c.Vmlinuz != "" {
		if into.Vmlinuz != "" {
			return fmt.Errorf("extract %s: %w: two kernel images (%s and %s)", name, ErrBadInput, into.Vmlinuz, c.Vmlinuz)
		}
		into.Vmlinuz = c.Vmlinuz
	}
	if c.Config != "" {
		into.Config = c.Config
	}
	if c.Modules != "" {
		if into.Modules != "" && into.Modules != c.Modules {
			return fmt.Errorf("extract %s: %w: modules for two releases (%s and %s)", name, ErrBadInput, into.Modules, c.Modules)
		}
		into.Modules, into.Release = c.Modules, c.Release
	}
	if into.Release == "" {
		into.Release = c.Release
	}
	return nil
}

// extractDebs extracts several packages of one kernel into tmp.
func extractDebs(ctx context.Context, paths []string, tmp string) (debContents, error) {
	var all debContents
	for _, p := range paths {
		c, err := extractDebMembers(ctx, p, tmp)
		if err != nil {
			return debContents{}, err
		}
		if err := mergeContents(&all, c, filepath.Base(p)); err != nil {
			return debContents{}, err
		}
	}
	return all, nil
}

// debItem is one .deb of a deb source.
type debItem struct {
	url, path, sha string
}

// items lists the packages of a deb source, validated.
func (s DebSpec) items() ([]debItem, error) {
	urls, shas := s.URLs, s.SHA256s
	if s.URL != "" {
		urls, shas = append([]string{s.URL}, urls...), append([]string{s.SHA256}, shas...)
	}
	files := s.Files
	if s.File != "" {
		files = append([]string{s.File}, files...)
	}
	switch {
	case len(urls) == 0 && len(files) == 0:
		return nil, fmt.Errorf("%w: deb: give url and sha256, or file", ErrBadInput)
	case len(urls) > 0 && len(files) > 0:
		return nil, fmt.Errorf("%w: deb: give URLs or files, not both", ErrBadInput)
	case len(urls) != len(shas):
		return nil, fmt.Errorf("%w: deb: %d URLs but %d sha256s; every URL needs its sha256", ErrBadInput, len(urls), len(shas))
	}
	var items []debItem
	for i, u := range urls {
		sha := strings.ToLower(shas[i])
		if !text.IsSHA256Hex(sha) {
			return nil, fmt.Errorf("%w: deb: sha256 of %s: expected 64 hex digits, got %q", ErrBadInput, u, shas[i])
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("%w: deb: url %q: expected http:// or https:// (use file: for local .debs)", ErrBadInput, u)
		}
		items = append(items, debItem{url: u, sha: sha})
	}
	for _, f := range files {
		items = append(items, debItem{path: f})
	}
	return items, nil
}

// resolveDeb resolves a deb: source.
func resolveDeb(ctx context.Context, spec DebSpec, arch Arch, opts Options) (*Kernel, error) {
	items, err := spec.items()
	if err != nil {
		return nil, err
	}
	return resolveDebItems(ctx, "deb", items, arch, opts, Origin{Type: "deb"})
}

// resolveDebItems fetches (or hashes) the packages and caches their kernel.
func resolveDebItems(ctx context.Context, kind string, items []debItem, arch Arch, opts Options, origin Origin) (*Kernel, error) {
	f := &fetcher{client: opts.Client, log: opts.Logger}
	var paths, shas []string
	for _, it := range items {
		switch {
		case it.url != "":
			p, err := opts.Cache.fetchBlob(ctx, f, it.url, it.sha)
			if err != nil {
				return nil, err
			}
			paths = append(paths, p)
		default:
			sha, err := inputfile.SHA256(ctx, it.path, maxDownload)
			if err != nil {
				return nil, inputError("deb", err)
			}
			it.sha = sha
			paths = append(paths, it.path)
		}
		shas = append(shas, it.sha)
		origin.Files = append(origin.Files, File{URL: it.url, Path: it.path, SHA256: it.sha})
	}
	if len(items) == 1 {
		origin.URL = items[0].url
	}
	key := combinedKey(kind, shas...)
	name := filepath.Base(paths[0])
	if len(items) == 1 && items[0].url != "" {
		name = filepath.Base(items[0].url)
	}
	return opts.Cache.cacheKernel(ctx, key, name, arch, origin, opts.Logger, func(tmp string) (debContents, error) {
		return extractDebs(ctx, paths, tmp)
	})
}
