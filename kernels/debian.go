package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
)

// resolutionTTL is how long a suite's newest kernel is trusted without
// re-reading the mirror's index.
const resolutionTTL = 24 * time.Hour

// debianResolution is index/debian/<key>.json: which package a suite's
// newest kernel was when the index was last read.
type debianResolution struct {
	Fetched time.Time  `json:"fetched"`
	Mirror  string     `json:"mirror"`
	Suite   string     `json:"suite"`
	Arch    string     `json:"arch"` // Debian spelling
	Flavour string     `json:"flavour"`
	Package debPackage `json:"package"`
	// Parts, when set, are the packages Package stands for (sid's
	// linux-image metapackage): image, base (the config) and modules.
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

// packageRelease is the kernel release a Debian linux-image package holds.
func packageRelease(pkg string) string {
	return strings.TrimSuffix(strings.TrimPrefix(pkg, "linux-image-"), "-unsigned")
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
	o := Origin{Type: "debian", Package: r.Package.Package, Version: r.Package.Version, Suite: r.Suite, URL: r.url()}
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

// resolveDebian resolves spec to a Kernel: from the cache when a fresh
// resolution and its kernel are there, else through the mirror.
func resolveDebian(ctx context.Context, spec DebianSpec, arch Arch, opts Options) (*Kernel, error) {
	if !validSuite(spec.Suite) {
		return nil, fmt.Errorf("%w: debian suite %q (want e.g. bookworm)", ErrBadInput, spec.Suite)
	}
	mirror := strings.TrimRight(spec.Mirror, "/")
	if mirror == "" {
		mirror = DefaultMirror
	}
	flavour := spec.Flavour
	if flavour == "" {
		flavour = defaultFlavour(arch)
	}
	c, log := opts.Cache, opts.Logger
	mh := sha256.Sum256([]byte(mirror))
	key := safeName(fmt.Sprintf("%s_%s_%s_%x", spec.Suite, arch.Debian(), flavour, mh[:4]))
	indexPath := filepath.Join(c.Dir, "index", "debian", key+".json")

	// readCached reads the resolution cached for this suite, arch, flavour
	// and mirror; one made for anything else is no resolution at all.
	var cached debianResolution
	readCached := func() bool {
		cached = debianResolution{}
		return readJSON(indexPath, &cached) == nil &&
			cached.Suite == spec.Suite && cached.Arch == arch.Debian() && cached.Flavour == flavour && cached.Mirror == mirror
	}

	// Warm path, without locks: every file read here appeared by rename.
	haveCached := readCached()
	if haveCached && !opts.Refresh && time.Since(cached.Fetched) < resolutionTTL {
		if k, err := c.loadKernel(cached.key()); err == nil && cached.check(k, arch) == nil {
			k.Origin = cached.origin()
			return k, nil
		}
	}

	unlock, err := c.Lock(ctx, "debian-"+key)
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
		keyring, err := loadKeyring(opts.Keyring, log)
		if err != nil {
			return debianResolution{}, err
		}
		start := time.Now()
		found, err := f.lookupDebian(ctx, mirror, spec.Suite, arch.Debian(), flavour, keyring != nil, func(data []byte) (*release, error) {
			return parseInRelease(data, keyring)
		})
		if err == nil {
			log.Info("resolved debian kernel", "suite", spec.Suite, "package", found.Package.Package,
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
			log.Warn("mirror unreachable, using the kernel resolved earlier", "suite", spec.Suite,
				"package", cached.Package.Package, "resolved", cached.Fetched.Format(time.RFC3339), "error", err)
		case errors.Is(err, ErrUnreachable) && haveCached:
			// Offline: the cached resolution is what there is.
		default:
			return nil, err
		}
	}

	k, err := c.prepareDebian(ctx, f, &res, arch, log)
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
		if k, err = c.prepareDebian(ctx, f, &res, arch, log); err == nil {
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

// lookupDebian reads a suite's InRelease and Packages index and returns
// its newest kernel package of flavour.
func (f *fetcher) lookupDebian(ctx context.Context, mirror, suite, debArch, flavour string, signed bool,
	parse func([]byte) (*release, error)) (debianResolution, error) {
	dist := mirror + "/dists/" + suite
	data, err := f.readAll(ctx, dist+"/InRelease", 64<<20)
	if errors.Is(err, errHTTPNotFound) {
		return debianResolution{}, fmt.Errorf("%w: debian suite %q on %s (no dists/%s/InRelease); valid suites include bullseye, bookworm, trixie, sid and <suite>-backports",
			ErrNotFound, suite, mirror, suite)
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
		k, err := newestKernel(dec, flavour)
		if errors.Is(err, errNoKernelPackage) {
			return debianResolution{}, fmt.Errorf("%w: no linux-image-<abi>-%s-unsigned, nor a linux-image-<abi>-%s over linux-binary-*, in %s main/binary-%s on %s",
				ErrNotFound, flavour, flavour, suite, debArch, mirror)
		}
		if err != nil {
			return debianResolution{}, fmt.Errorf("read %s: %w", url, err)
		}
		for _, p := range append([]debPackage{k.Package}, k.Parts...) {
			if !filepath.IsLocal(p.Filename) {
				return debianResolution{}, fmt.Errorf("read %s: bad Filename %q", url, p.Filename)
			}
		}
		return debianResolution{Fetched: time.Now().UTC(), Mirror: mirror, Suite: suite,
			Arch: debArch, Flavour: flavour, Package: k.Package, Parts: k.Parts}, nil
	}
	return debianResolution{}, fmt.Errorf("%w: debian suite %q on %s has no main/binary-%s/Packages index", ErrNotFound, suite, mirror, debArch)
}

// prepareDebian makes sure the package of res is downloaded and extracted
// and returns its Kernel.
func (c *Cache) prepareDebian(ctx context.Context, f *fetcher, res *debianResolution, arch Arch, log *slog.Logger) (*Kernel, error) {
	pkgs := res.Parts
	if len(pkgs) == 0 {
		pkgs = []debPackage{res.Package}
	}
	for _, p := range pkgs {
		if !text.IsSHA256Hex(p.SHA256) {
			return nil, fmt.Errorf("prepare %s: bad sha256 %q", p.Package, p.SHA256)
		}
	}
	// The packages are downloaded and extracted under prepareKernel's lock,
	// so that two runs never fetch them twice.
	return c.prepareKernel(ctx, res.key(), filepath.Base(res.Package.Filename), arch, res.origin(), log, func(tmp string) (debContents, error) {
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
	got, err := FileSHA256(path)
	if err != nil {
		return err
	}
	if got != sha {
		return fmt.Errorf("%w: %s has sha256 %s", ErrChecksum, path, got)
	}
	return nil
}
