package kernels

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"pault.ag/go/debian/deb"
	"pault.ag/go/debian/version"

	"github.com/vmrunner/vmrunner/internal/text"
)

// This file fetches Debian binary packages that are not kernels (the
// workload's PostgreSQL and Redis) through the same chain of trust as
// Debian kernels: InRelease (signed) → Packages (SHA-256 in InRelease) →
// each .deb (SHA-256 in Packages).

// PackagesSpec names binary packages of a Debian suite. The packages and
// the shared-library packages they depend on are fetched: Depends and
// Pre-Depends are followed into packages of Section "libs" (libc6,
// zlib1g, libssl3), never into programs (debconf, perl, adduser), which a
// guest running the packages' binaries directly does not need.
type PackagesSpec struct {
	Mirror   string // archive root; default DefaultMirror
	Suite    string // bookworm
	Packages []string
	// Skip are path.Match patterns of dependencies not to follow
	// (libllvm* for PostgreSQL, whose JIT the guest does not load).
	Skip []string
}

// Packages is a set of packages fetched, verified and unpacked into one
// tree.
type Packages struct {
	// Root holds every package's files as dpkg would install them:
	// regular files, directories and symbolic links (absolute links point
	// into Root only when read through a resolver that stays in it, as
	// package program does).
	Root     string       `json:"-"`
	Arch     Arch         `json:"arch"`
	Suite    string       `json:"suite"`
	Mirror   string       `json:"mirror"`
	Packages []PackageRef `json:"packages"`
}

// PackageRef is one package of a set.
type PackageRef struct {
	Package string `json:"package"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// packagesRecord is packages/<key>/packages.json, written last.
const packagesRecord = "packages.json"

// FetchPackages resolves spec for arch in its suite's Packages index
// (cached for a day, like a kernel's resolution), downloads the packages
// not yet in the cache, verifying each, and unpacks them into
// packages/<key>/root, where key hashes the packages' SHA-256s. A warm
// call reads two small JSON files.
func FetchPackages(ctx context.Context, spec PackagesSpec, arch Arch, opts Options) (*Packages, error) {
	if !validSuite(spec.Suite) {
		return nil, fmt.Errorf("fetch packages: %w: debian suite %q (want e.g. bookworm)", ErrBadInput, spec.Suite)
	}
	if len(spec.Packages) == 0 {
		return nil, fmt.Errorf("fetch packages: %w: no package named", ErrBadInput)
	}
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if opts.Client == nil {
		opts.Client = defaultClient
	}
	if opts.Offline {
		opts.Client = offlineClient
	}
	if opts.Cache == nil {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, fmt.Errorf("fetch packages: %w", err)
		}
		if opts.Cache, err = OpenCache(dir); err != nil {
			return nil, fmt.Errorf("fetch packages: %w", err)
		}
	}
	c, log := opts.Cache, opts.Logger
	mirror := cmp.Or(strings.TrimRight(spec.Mirror, "/"), DefaultMirror)
	selector := strings.Join(spec.Packages, ",") + "\x00" + strings.Join(spec.Skip, ",")
	mh := sha256.Sum256([]byte(mirror + "\x00" + selector))
	key := safeName(fmt.Sprintf("%s_%s_%x", spec.Suite, arch.Debian(), mh[:6]))
	indexPath := filepath.Join(c.Dir, "index", "packages", key+".json")

	var cached debianResolution
	readCached := func() bool {
		cached = debianResolution{}
		return readJSON(indexPath, &cached) == nil && cached.Type == "packages" && cached.Suite == spec.Suite &&
			cached.Arch == arch.Debian() && cached.Mirror == mirror && cached.Select == selector
	}
	if readCached() && !opts.Refresh && (opts.Offline || time.Since(cached.Fetched) < resolutionTTL) {
		if p, err := c.loadPackages(cached.key()); err == nil {
			return p, nil
		}
	}
	unlock, err := c.Lock(ctx, "packages-"+key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	haveCached := readCached()
	res := cached
	if !haveCached || opts.Refresh || time.Since(cached.Fetched) >= resolutionTTL {
		f := &fetcher{client: opts.Client, log: log}
		a := archive{kind: "packages", mirror: mirror, suite: spec.Suite, selector: selector,
			pick:   func(r io.Reader, where string) (debianKernel, error) { return packageClosure(r, spec, where) },
			suites: "bullseye, bookworm, trixie, sid"}
		keyring, err := loadKeyring(opts.Keyring, log)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		found, err := f.lookupArchive(ctx, a, arch.Debian(), keyring != nil, func(data []byte) (*release, error) {
			return parseInRelease(data, keyring)
		})
		switch {
		case err == nil:
			found.Type = "packages"
			res = found
			log.Info("resolved packages", "suite", spec.Suite, "arch", arch, "packages", len(found.Parts),
				"duration", time.Since(start).Round(time.Millisecond))
		case errors.Is(err, ErrUnreachable) && haveCached:
			log.Warn("mirror unreachable, using the packages resolved earlier", "suite", spec.Suite,
				"resolved", cached.Fetched.Format(time.RFC3339), "error", err)
		default:
			return nil, fmt.Errorf("fetch packages %s: %w", strings.Join(spec.Packages, ", "), err)
		}
		p, err := c.preparePackages(ctx, f, &res, arch, log)
		if err != nil {
			return nil, err
		}
		if err := writeJSONAtomic(indexPath, &res); err != nil {
			return nil, err
		}
		return p, nil
	}
	return c.preparePackages(ctx, &fetcher{client: opts.Client, log: log}, &res, arch, log)
}

// packagesDir is where a package set is unpacked.
func (c *Cache) packagesDir(key string) string { return filepath.Join(c.Dir, "packages", key) }

// loadPackages reads packages/<key>/ when it is complete.
func (c *Cache) loadPackages(key string) (*Packages, error) {
	dir := c.packagesDir(key)
	var p Packages
	if err := readJSON(filepath.Join(dir, packagesRecord), &p); err != nil {
		return nil, err
	}
	p.Root = filepath.Join(dir, "root")
	return &p, nil
}

// preparePackages downloads and unpacks the packages of res unless
// packages/<key>/ is there.
func (c *Cache) preparePackages(ctx context.Context, f *fetcher, res *debianResolution, arch Arch, log *slog.Logger) (*Packages, error) {
	key := res.key()
	if p, err := c.loadPackages(key); err == nil {
		return p, nil
	}
	unlock, err := c.Lock(ctx, "blob-"+key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if p, err := c.loadPackages(key); err == nil {
		return p, nil
	}
	final := c.packagesDir(key)
	removeStaleTemps(final)
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), filepath.Base(tempPrefix(final))+"*")
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	start := time.Now()
	rec := Packages{Arch: arch, Suite: res.Suite, Mirror: res.Mirror}
	root := filepath.Join(tmp, "root")
	for _, p := range res.Parts {
		if !text.IsSHA256Hex(p.SHA256) {
			return nil, fmt.Errorf("prepare %s: bad sha256 %q", p.Package, p.SHA256)
		}
		blob := c.blobPath(p.SHA256)
		if err := checkBlob(blob, p.SHA256); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				log.Warn("cached package damaged, downloading again", "path", blob, "error", err)
				os.Remove(blob)
			}
			log.Info("downloading", "package", p.Package, "version", p.Version, "bytes", p.Size)
			if err := f.download(ctx, res.Mirror+"/"+p.Filename, blob, p.SHA256, p.Size); err != nil {
				return nil, err
			}
		}
		if err := unpackDeb(ctx, blob, root); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p.Package, err)
		}
		rec.Packages = append(rec.Packages, PackageRef{Package: p.Package, Version: p.Version, SHA256: p.SHA256, Size: p.Size})
	}
	if err := writeJSONAtomic(filepath.Join(tmp, packagesRecord), &rec); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", final, err)
	}
	log.Info("packages ready", "suite", res.Suite, "arch", arch, "packages", len(rec.Packages),
		"duration", time.Since(start).Round(time.Millisecond))
	return c.loadPackages(key)
}

// unpackDeb writes a .deb's data.tar into root: directories, regular
// files (hard links as copies) and symbolic links, as they are. Members
// whose names leave root are refused.
func unpackDeb(ctx context.Context, debPath, root string) error {
	d, closer, err := deb.LoadFile(debPath)
	if err != nil {
		return fmt.Errorf("open %s: not a .deb: %w", debPath, err)
	}
	defer func() { _ = closer() }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := d.Data.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read data.tar%s: %w", d.DataExt, err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || name == "" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("member %q leaves the package's root", hdr.Name)
		}
		dst := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writePackageFile(dst, d.Data, hdr.FileInfo().Mode().Perm()); err != nil {
				return err
			}
		case tar.TypeLink:
			src := path.Clean(strings.TrimPrefix(hdr.Linkname, "./"))
			if !filepath.IsLocal(src) {
				return fmt.Errorf("hard link %q leaves the package's root", hdr.Linkname)
			}
			in, err := os.Open(filepath.Join(root, src))
			if err != nil {
				return err
			}
			err = writePackageFile(dst, in, hdr.FileInfo().Mode().Perm())
			in.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(dst)
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return err
			}
		}
	}
}

func writePackageFile(dst string, r io.Reader, mode os.FileMode) error {
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o200)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// indexEntry is what packageClosure reads of a Packages paragraph.
type indexEntry struct {
	debPackage
	section string
	depends []string // Pre-Depends and Depends relations, as written
}

// packageClosure reads a Packages index and returns spec's packages and
// the library packages (Section: libs) they depend on, transitively, as Parts (roots
// first, then in the order found); Package is the first root. Of a
// relation's alternatives the first the index has is taken; a relation
// none of whose alternatives the index has (a virtual package) is left.
func packageClosure(r io.Reader, spec PackagesSpec, where string) (debianKernel, error) {
	idx, err := scanIndex(r)
	if err != nil {
		return debianKernel{}, err
	}
	skip := func(name string) bool {
		for _, pat := range spec.Skip {
			if ok, _ := path.Match(pat, name); ok {
				return true
			}
		}
		return false
	}
	var (
		out  []debPackage
		seen = map[string]bool{}
	)
	queue := slices.Clone(spec.Packages)
	for _, name := range spec.Packages {
		if _, ok := idx[name]; !ok {
			return debianKernel{}, fmt.Errorf("%w: package %s is not in %s", ErrNotFound, name, where)
		}
		seen[name] = true
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		e := idx[name]
		out = append(out, e.debPackage)
		for _, rel := range e.depends {
			for _, alt := range strings.Split(rel, "|") {
				dep := depName(alt)
				if _, ok := idx[dep]; !ok {
					continue
				}
				if !seen[dep] && idx[dep].section == "libs" && !skip(dep) {
					seen[dep] = true
					queue = append(queue, dep)
				}
				break
			}
		}
	}
	return debianKernel{Package: out[0], Parts: out}, nil
}

// depName is the package name of one alternative of a relation:
// "libc6 (>= 2.34)" → libc6, "libssl3:any" → libssl3.
func depName(alt string) string {
	alt = strings.TrimSpace(alt)
	if i := strings.IndexAny(alt, " (["); i >= 0 {
		alt = alt[:i]
	}
	name, _, _ := strings.Cut(alt, ":")
	return name
}

// scanIndex reads the fields packageClosure needs from every paragraph of
// a Packages index, keeping each package's newest version.
func scanIndex(r io.Reader) (map[string]indexEntry, error) {
	idx := map[string]indexEntry{}
	var cur indexEntry
	finish := func() error {
		defer func() { cur = indexEntry{} }()
		if cur.Package == "" {
			return nil
		}
		if cur.Filename == "" || cur.SHA256 == "" || cur.Size <= 0 {
			return fmt.Errorf("parse Packages entry %s: missing Filename, Size or SHA256", cur.Package)
		}
		if old, ok := idx[cur.Package]; ok && !newerPackage(cur.debPackage, old.debPackage) {
			return nil
		}
		if _, err := version.Parse(cur.Version); err != nil {
			return fmt.Errorf("parse Packages entry %s: version %q: %w", cur.Package, cur.Version, err)
		}
		if !filepath.IsLocal(cur.Filename) {
			return fmt.Errorf("parse Packages entry %s: bad Filename %q", cur.Package, cur.Filename)
		}
		idx[cur.Package] = cur
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a continuation line (Description)
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val := string(bytes.TrimSpace(v))
		switch string(k) {
		case "Package":
			cur.Package = val
		case "Version":
			cur.Version = val
		case "Filename":
			cur.Filename = val
		case "SHA256":
			cur.SHA256 = val
		case "Size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse Packages entry %s: size %q", cur.Package, val)
			}
			cur.Size = n
		case "Section":
			cur.section = val
		case "Depends", "Pre-Depends":
			cur.depends = append(cur.depends, strings.Split(val, ",")...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read Packages: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return idx, nil
}
