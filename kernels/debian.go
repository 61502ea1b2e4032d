package kernels

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/vmrunner/vmrunner/internal/text"
)

// resolutionTTL is how long a suite's newest kernel is trusted without
// re-reading the mirror's index.
const resolutionTTL = 24 * time.Hour

// debianResolution is index/<kind>/<key>.json: which packages a suite's
// newest kernel was when the index was last read, in Debian's archive or
// in another of the same format (Ubuntu's).
type debianResolution struct {
	// Type is the kind of source, "debian" when empty (resolutions cached
	// before Ubuntu's archive was read have none).
	Type    string     `json:"type,omitempty"`
	Fetched time.Time  `json:"fetched"`
	Mirror  string     `json:"mirror"`
	Suite   string     `json:"suite"`
	Arch    string     `json:"arch"` // Debian spelling
	Flavour string     `json:"flavour"`
	Select  string     `json:"select,omitempty"` // archive.selector
	Package debPackage `json:"package"`
	// Parts, when set, are the packages Package stands for (sid's
	// linux-image metapackage: image, base (the config) and modules;
	// Ubuntu's image and modules packages).
	Parts []debPackage `json:"parts,omitempty"`
}

// key is the kernel's directory in the cache: the package's SHA-256, or
// for a kernel in parts the key a deb source with the same packages uses.
func (r *debianResolution) key() string {
	if len(r.Parts) == 0 {
		return r.Package.SHA256
	}
	shas := make([]string, len(r.Parts))
	for i, p := range r.Parts {
		shas[i] = p.SHA256
	}
	return combinedKey("deb", shas...)
}

func (r *debianResolution) url() string { return r.Mirror + "/" + r.Package.Filename }

// release is the kernel release the package holds, from its name:
// linux-image-6.1.0-50-amd64-unsigned holds 6.1.0-50-amd64.
func (r *debianResolution) release() string { return packageRelease(r.Package.Package) }

// packageRelease is the kernel release a Debian or Ubuntu linux-image
// package holds: linux-image-6.1.0-50-amd64-unsigned,
// linux-image-unsigned-5.15.0-91-generic.
func packageRelease(pkg string) string {
	rel := strings.TrimSuffix(strings.TrimPrefix(pkg, "linux-image-"), "-unsigned")
	return strings.TrimPrefix(rel, "unsigned-")
}

// check says whether k, the kernel cached under the resolution's SHA-256,
// is the one the resolution names: its release and arch. An error wraps
// ErrCacheDamaged.
func (r *debianResolution) check(k *Kernel, arch Arch) error {
	if k.Arch != arch || k.Release != r.release() {
		return fmt.Errorf("%w: %s (%s, %s) names a .deb whose kernel is %s for %s", ErrCacheDamaged,
			r.Package.Package, r.Suite, arch, k.Release, k.Arch)
	}
	return nil
}

func (r *debianResolution) origin() Origin {
	o := Origin{Type: cmp.Or(r.Type, "debian"), Package: r.Package.Package, Version: r.Package.Version, Suite: r.Suite, URL: r.url()}
	for _, p := range r.Parts {
		o.Files = append(o.Files, File{URL: r.Mirror + "/" + p.Filename, SHA256: p.SHA256})
	}
	return o
}

// defaultFlavour is the flavour that boots in QEMU with the fewest
// surprises: the generic x86 kernel, the small cloud kernel on arm64.
func defaultFlavour(arch Arch) string {
	if arch == ARM64 {
		return "cloud-arm64"
	}
	return "amd64"
}

// archive is a kernel source over an archive in Debian's format
// (dists/<suite>/InRelease → main/binary-<arch>/Packages → pool): Debian's
// own, or Ubuntu's. What differs is the keyring and which packages make a
// kernel (pick).
type archive struct {
	kind    string // "debian", "ubuntu": Origin.Type and index/<kind>/
	mirror  string // without a trailing slash
	suite   string
	flavour string
	// selector is what else chooses the kernel (Ubuntu's version series or
	// ABI): part of the cached resolution's key.
	selector string
	// keyring loads the keys InRelease must be signed with; nil keys
	// (no keyring installed) trust InRelease as served, as loadKeyring says.
	keyring func(*slog.Logger) (openpgp.EntityList, error)
	// pick finds the kernel's packages in a Packages index; where names
	// the index ("bookworm main/binary-amd64 on MIRROR") for errors.
	pick func(r io.Reader, where string) (debianKernel, error)
	// suites are examples of valid suites, for the error of a missing one.
	suites string
}

// resolveDebian resolves a debian: source.
func resolveDebian(ctx context.Context, spec DebianSpec, arch Arch, opts Options) (*Kernel, error) {
	if !validSuite(spec.Suite) {
		return nil, fmt.Errorf("%w: debian suite %q (want e.g. bookworm)", ErrBadInput, spec.Suite)
	}
	flavour := cmp.Or(spec.Flavour, defaultFlavour(arch))
	return resolveArchive(ctx, archive{
		kind:    "debian",
		mirror:  cmp.Or(strings.TrimRight(spec.Mirror, "/"), DefaultMirror),
		suite:   spec.Suite,
		flavour: flavour,
		keyring: func(log *slog.Logger) (openpgp.EntityList, error) { return loadKeyring(opts.Keyring, log) },
		pick: func(r io.Reader, where string) (debianKernel, error) {
			k, err := newestKernel(r, flavour)
			if errors.Is(err, errNoKernelPackage) {
				return k, fmt.Errorf("%w: no linux-image-<abi>-%s-unsigned, nor a linux-image-<abi>-%s over linux-binary-*, in %s",
					ErrNotFound, flavour, flavour, where)
			}
			return k, err
		},
		suites: "bullseye, bookworm, trixie, sid and <suite>-backports",
	}, arch, opts)
}

// resolveArchive resolves a kernel of an archive to a Kernel: from the
// cache when a fresh resolution and its kernel are there, else through the
// mirror.
func resolveArchive(ctx context.Context, a archive, arch Arch, opts Options) (*Kernel, error) {
	c, log := opts.Cache, opts.Logger
	id := a.mirror // Debian's resolutions keep the key they had before Ubuntu's
	if a.selector != "" {
		id += "\x00" + a.selector
	}
	mh := sha256.Sum256([]byte(id))
	key := safeName(fmt.Sprintf("%s_%s_%s_%x", a.suite, arch.Debian(), a.flavour, mh[:4]))
	indexPath := filepath.Join(c.Dir, "index", a.kind, key+".json")
	lockName := a.kind + "-" + key

	// readCached reads the resolution cached for this suite, arch, flavour,
	// selection and mirror; one made for anything else is no resolution at all.
	var cached debianResolution
	readCached := func() bool {
		cached = debianResolution{}
		return readJSON(indexPath, &cached) == nil && cmp.Or(cached.Type, "debian") == a.kind &&
			cached.Suite == a.suite && cached.Arch == arch.Debian() && cached.Flavour == a.flavour &&
			cached.Mirror == a.mirror && cached.Select == a.selector
	}

	// Warm path, without locks: every file read here appeared by rename.
	haveCached := readCached()
	if haveCached && !opts.Refresh && time.Since(cached.Fetched) < resolutionTTL {
		if k, err := c.loadKernel(cached.key()); err == nil && cached.check(k, arch) == nil {
			k.Origin = cached.origin()
			return k, nil
		}
	}

	unlock, err := c.Lock(ctx, lockName)
	if err != nil {
		return nil, err
	}
	defer unlock()
	haveCached = readCached() // another process may have been first
	if haveCached {
		// The resolution must name the kernel that is cached under its
		// SHA-256: an index pointing at another suite's or arch's package
		// must not boot that kernel under this name.
		if k, err := c.loadKernel(cached.key()); err == nil {
			if err := cached.check(k, arch); err != nil {
				log.Warn("cached resolution names another kernel, reading the mirror again", "index", indexPath, "problem", err)
				haveCached = false
			}
		}
	}
	f := &fetcher{client: opts.Client, log: log}
	lookup := func() (debianResolution, error) {
		keyring, err := a.keyring(log)
		if err != nil {
			return debianResolution{}, err
		}
		start := time.Now()
		found, err := f.lookupArchive(ctx, a, arch.Debian(), keyring != nil, func(data []byte) (*release, error) {
			return parseInRelease(data, keyring)
		})
		if err == nil {
			log.Info("resolved "+a.kind+" kernel", "suite", a.suite, "package", found.Package.Package,
				"version", found.Package.Version, "duration", time.Since(start).Round(time.Millisecond))
		}
		return found, err
	}

	res, fresh := cached, false
	if !haveCached || opts.Refresh || time.Since(cached.Fetched) >= resolutionTTL {
		found, err := lookup()
		switch {
		case err == nil:
			res, fresh = found, true
		case errors.Is(err, ErrUnreachable) && haveCached && !opts.Offline:
			log.Warn("mirror unreachable, using the kernel resolved earlier", "suite", a.suite,
				"package", cached.Package.Package, "resolved", cached.Fetched.Format(time.RFC3339), "error", err)
		case errors.Is(err, ErrUnreachable) && haveCached:
			// Offline: the cached resolution is what there is.
		default:
			return nil, err
		}
	}

	k, err := c.cacheDebian(ctx, f, &res, arch, log)
	if err == nil {
		err = res.check(k, arch)
	}
	if (errors.Is(err, ErrCacheDamaged) || errors.Is(err, ErrWrongArch)) && !fresh {
		// The cached resolution named a package that holds another kernel:
		// read the mirror again rather than boot it under this name.
		log.Warn("cached resolution names another kernel, reading the mirror again", "index", indexPath, "problem", err)
		if res, err = lookup(); err != nil {
			return nil, err
		}
		fresh = true
		if k, err = c.cacheDebian(ctx, f, &res, arch, log); err == nil {
			err = res.check(k, arch)
		}
	}
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := writeJSONAtomic(indexPath, &res); err != nil {
			return nil, err
		}
	}
	k.Origin = res.origin()
	return k, nil
}

// lookupArchive reads a suite's InRelease and Packages index and returns
// the kernel a.pick finds in it.
func (f *fetcher) lookupArchive(ctx context.Context, a archive, debArch string, signed bool,
	parse func([]byte) (*release, error)) (debianResolution, error) {
	mirror, suite := a.mirror, a.suite
	dist := mirror + "/dists/" + suite
	data, err := f.readAll(ctx, dist+"/InRelease", 64<<20)
	if errors.Is(err, errHTTPNotFound) {
		return debianResolution{}, fmt.Errorf("%w: %s suite %q on %s (no dists/%s/InRelease); valid suites include %s",
			ErrNotFound, a.kind, suite, mirror, suite, a.suites)
	}
	if err != nil {
		return debianResolution{}, err
	}
	rel, err := parse(data)
	if err != nil {
		return debianResolution{}, fmt.Errorf("read %s/InRelease: %w", dist, err)
	}
	if !signed {
		f.log.Debug("InRelease not verified: no keyring", "suite", suite)
	}

	// Packages.gz first: gunzip is several times faster than xz in Go, and
	// the extra megabytes cost less than the decompression saved. sid and
	// backports only publish Packages.xz.
	for _, name := range []string{"Packages.gz", "Packages.xz"} {
		rpath := "main/binary-" + debArch + "/" + name
		want, ok := rel.file(rpath)
		if !ok {
			continue
		}
		url := dist + "/" + rpath
		data, err := f.readAll(ctx, url, want.Size)
		if errors.Is(err, errHTTPNotFound) {
			continue
		}
		if err != nil {
			return debianResolution{}, err
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != want.Size || hex.EncodeToString(sum[:]) != want.Hash {
			return debianResolution{}, fmt.Errorf("fetch %s: %w: InRelease says %d bytes sha256 %s", url, ErrChecksum, want.Size, want.Hash)
		}
		format := formatGzip
		if path.Ext(name) == ".xz" {
			format = formatXZ
		}
		dec, err := decompress(format, bytes.NewReader(data))
		if err != nil {
			return debianResolution{}, fmt.Errorf("decompress %s: %w", url, err)
		}
		k, err := a.pick(dec, fmt.Sprintf("%s main/binary-%s on %s", suite, debArch, mirror))
		if errors.Is(err, ErrNotFound) {
			return debianResolution{}, err
		}
		if err != nil {
			return debianResolution{}, fmt.Errorf("read %s: %w", url, err)
		}
		for _, p := range append([]debPackage{k.Package}, k.Parts...) {
			if !filepath.IsLocal(p.Filename) {
				return debianResolution{}, fmt.Errorf("read %s: bad Filename %q", url, p.Filename)
			}
		}
		r := debianResolution{Fetched: time.Now().UTC(), Mirror: mirror, Suite: suite,
			Arch: debArch, Flavour: a.flavour, Select: a.selector, Package: k.Package, Parts: k.Parts}
		if a.kind != "debian" {
			r.Type = a.kind
		}
		return r, nil
	}
	return debianResolution{}, fmt.Errorf("%w: %s suite %q on %s has no main/binary-%s/Packages index", ErrNotFound, a.kind, suite, mirror, debArch)
}

// cacheDebian makes sure the package of res is downloaded and extracted
// and returns its Kernel.
func (c *Cache) cacheDebian(ctx context.Context, f *fetcher, res *debianResolution, arch Arch, log *slog.Logger) (*Kernel, error) {
	pkgs := res.Parts
	if len(pkgs) == 0 {
		pkgs = []debPackage{res.Package}
	}
	for _, p := range pkgs {
		if !text.IsSHA256Hex(p.SHA256) {
			return nil, fmt.Errorf("prepare %s: bad sha256 %q", p.Package, p.SHA256)
		}
	}
	// The packages are downloaded and extracted under cacheKernel's lock,
	// so that two runs never fetch them twice.
	return c.cacheKernel(ctx, res.key(), filepath.Base(res.Package.Filename), arch, res.origin(), log, func(tmp string) (debContents, error) {
		var blobs []string
		for _, p := range pkgs {
			blob := c.blobPath(p.SHA256)
			if err := checkBlob(blob, p.SHA256); err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					log.Warn("cached package damaged, downloading again", "path", blob, "error", err)
					os.Remove(blob)
				}
				log.Info("downloading", "package", p.Package, "version", p.Version, "bytes", p.Size)
				if err := f.download(ctx, res.Mirror+"/"+p.Filename, blob, p.SHA256, p.Size); err != nil {
					return debContents{}, err
				}
			}
			blobs = append(blobs, blob)
		}
		start := time.Now()
		var contents debContents
		var err error
		if len(blobs) == 1 {
			contents, err = extractDeb(ctx, blobs[0], tmp)
		} else {
			contents, err = extractDebs(ctx, blobs, tmp)
		}
		if err == nil {
			log.Info("extracted", "package", res.Package.Package, "release", contents.Release, "duration", time.Since(start).Round(time.Millisecond))
		}
		return contents, err
	})
}

// checkBlob verifies a cached blob against its name.
func checkBlob(path, sha string) error {
	got, err := fileutil.FileSHA256(path)
	if err != nil {
		return err
	}
	if got != sha {
		return fmt.Errorf("%w: %s has sha256 %s", ErrChecksum, path, got)
	}
	return nil
}
