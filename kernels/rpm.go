package kernels

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/internal/text"
)

// RPMSpec selects a kernel of an RPM repository: the newest build of
// Package (of Version, when set) and the packages of Modules of the same
// build, every one verified against Key. Distro fills the rest from the
// families of rpmfamily.go.
type RPMSpec struct {
	// Distro is a short form: alma-8, rocky-9, centos-stream-10,
	// amazon-2, amazon-2023, oracle-uek-8, opensuse-leap-15.6...
	Distro string `yaml:"distro,omitempty" json:"distro,omitempty"`
	// Repo is the repository root, the directory holding repodata/;
	// $basearch is replaced by x86_64 or aarch64. A URL ending in
	// /mirror.list is a list of such roots (Amazon Linux's), the first
	// one used.
	Repo string `yaml:"repo,omitempty" json:"repo,omitempty"`
	// Package holds the image: kernel-core (EL 8 and later), kernel
	// (Amazon Linux), kernel-default (SUSE), kernel-uek-core (Oracle UEK).
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	// Modules are the packages of the same build that hold the modules
	// vmrunner's initramfs loads; each must be there.
	Modules []string `yaml:"modules,omitempty" json:"modules,omitempty"`
	// Version selects builds whose version-release starts with it:
	// "4.18.0", "5.14.0-427". Empty: the newest.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// Key is an OpenPGP key file (armored or binary, relative to the
	// matrix file) the packages must be signed with; default the
	// distro's key, fetched over HTTPS from KeyURL.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	// KeyURL is where the distro publishes its key, as dnf's gpgkey=.
	KeyURL string `yaml:"key_url,omitempty" json:"key_url,omitempty"`
}

// Validate checks the spec without touching the network.
func (s RPMSpec) Validate() error {
	if s.Distro != "" {
		if _, ok := rpmFamilies[s.Distro]; !ok {
			return fmt.Errorf("rpm.distro: unknown distro %q; known: %s", s.Distro, strings.Join(RPMDistros(), ", "))
		}
	}
	full := s.withFamily()
	switch {
	case full.Repo == "":
		return errors.New("rpm: missing repo (the URL of the directory holding repodata/) or distro")
	case !strings.HasPrefix(full.Repo, "http://") && !strings.HasPrefix(full.Repo, "https://"):
		return fmt.Errorf("rpm.repo: expected an http(s) URL, got %q", full.Repo)
	case full.Key == "" && full.KeyURL == "":
		return errors.New("rpm: missing key: the OpenPGP key file the packages are signed with")
	case full.KeyURL != "" && full.Key == "" && !strings.HasPrefix(full.KeyURL, "https://"):
		return fmt.Errorf("rpm.key_url: expected an https URL (the key is the root of trust), got %q", full.KeyURL)
	}
	for _, n := range append([]string{full.Package}, full.Modules...) {
		if n == "" || strings.ContainsAny(n, "/ \\") {
			return fmt.Errorf("rpm: bad package name %q", n)
		}
	}
	return nil
}

// withFamily fills what s leaves empty from its distro's family.
func (s RPMSpec) withFamily() RPMSpec {
	f := rpmFamilies[s.Distro]
	s.Repo = cmp.Or(s.Repo, f.Repo)
	s.Package = cmp.Or(s.Package, f.Package, "kernel-core")
	if s.Modules == nil {
		s.Modules = f.Modules
	}
	if s.Key == "" {
		s.KeyURL = cmp.Or(s.KeyURL, f.KeyURL)
	}
	return s
}

// rpmArch is the RPM spelling of arch.
func rpmArch(a Arch) string {
	if a == ARM64 {
		return "aarch64"
	}
	return "x86_64"
}

// rpmResolution is index/rpm/<key>.json: the packages a repository's
// newest kernel was when its metadata was last read.
type rpmResolution struct {
	Fetched  time.Time    `json:"fetched"`
	Spec     RPMSpec      `json:"spec"`
	Arch     string       `json:"arch"` // RPM spelling
	Base     string       `json:"base"` // the repository root used (after mirror.list)
	Packages []rpmPackage `json:"packages"`
}

func (r *rpmResolution) key() string {
	shas := make([]string, len(r.Packages))
	for i, p := range r.Packages {
		shas[i] = p.Sum
	}
	return combinedKey("rpm", shas...)
}

func (r *rpmResolution) origin() Origin {
	img := r.Packages[0]
	o := Origin{Type: "rpm", Package: img.Name, Version: img.evr(), Suite: r.Spec.Distro, URL: r.Base + "/" + img.Location}
	for _, p := range r.Packages {
		o.Files = append(o.Files, File{URL: r.Base + "/" + p.Location, SHA256: p.Sum})
	}
	return o
}

// resolveRPM resolves an rpm: source: from the cache when a fresh
// resolution and its kernel are there, else through the repository.
func resolveRPM(ctx context.Context, spec RPMSpec, arch Arch, opts Options) (*Kernel, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	full := spec.withFamily()
	full.Repo = strings.TrimRight(strings.ReplaceAll(full.Repo, "$basearch", rpmArch(arch)), "/")
	c, log := opts.Cache, opts.Logger
	id := sha256.Sum256([]byte(specID(full) + "\x00" + rpmArch(arch)))
	indexPath := filepath.Join(c.Dir, "index", "rpm", fmt.Sprintf("%x.json", id[:8]))
	f := &fetcher{client: opts.Client, log: log, fix: "set repo: in the rpm source"}

	var cached rpmResolution
	haveCached := readJSON(indexPath, &cached) == nil && len(cached.Packages) > 0 &&
		specID(cached.Spec) == specID(full) && cached.Arch == rpmArch(arch)
	if haveCached && !opts.Refresh && time.Since(cached.Fetched) < resolutionTTL {
		if k, err := c.loadKernel(cached.key()); err == nil && k.Arch == arch {
			k.Origin = cached.origin()
			return k, nil
		}
	}
	res, fresh := cached, false
	if !haveCached || opts.Refresh || time.Since(cached.Fetched) >= resolutionTTL {
		found, err := f.lookupRPM(ctx, full, rpmArch(arch))
		switch {
		case err == nil:
			res, fresh = found, true
		case errors.Is(err, ErrUnreachable) && haveCached:
			if !opts.Offline {
				log.Warn("repository unreachable, using the kernel resolved earlier", "repo", full.Repo,
					"package", cached.Packages[0].Name+"-"+cached.Packages[0].evr(), "error", err)
			}
		default:
			return nil, err
		}
	}
	k, err := cacheRPMs(ctx, f, res.items(), full, arch, res.origin(), opts)
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := writeJSONAtomic(indexPath, &res); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// specID identifies a filled-in spec.
func specID(s RPMSpec) string { return SpecHash(Spec{RPM: &s}) }

// lookupRPM reads the repository's metadata and picks the kernel's
// packages.
func (f *fetcher) lookupRPM(ctx context.Context, spec RPMSpec, arch string) (rpmResolution, error) {
	base := spec.Repo
	if strings.HasSuffix(base, "/mirror.list") {
		data, err := f.readAll(ctx, base, 1<<20)
		if err != nil {
			return rpmResolution{}, err
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		first = strings.TrimRight(strings.TrimSpace(first), "/")
		if !strings.HasPrefix(first, "http://") && !strings.HasPrefix(first, "https://") {
			return rpmResolution{}, fmt.Errorf("read %s: expected a list of repository URLs", base)
		}
		base = first
	}
	names := append([]string{spec.Package}, spec.Modules...)
	pkgs, err := f.readPrimary(ctx, base, func(name, a string) bool {
		return (a == arch || a == "noarch") && slices.Contains(names, name)
	})
	if err != nil {
		return rpmResolution{}, err
	}
	picked, err := pickRPM(pkgs, spec, arch, base)
	if err != nil {
		return rpmResolution{}, err
	}
	return rpmResolution{Fetched: time.Now().UTC(), Spec: spec, Arch: arch, Base: base, Packages: picked}, nil
}

// pickRPM finds the newest build of spec.Package (of spec.Version) for
// arch, and the modules packages of the same version-release.
func pickRPM(pkgs []rpmPackage, spec RPMSpec, arch, repo string) ([]rpmPackage, error) {
	var img *rpmPackage
	for i, p := range pkgs {
		if p.Name != spec.Package {
			continue
		}
		if p.Arch != arch {
			continue
		}
		if v := spec.Version; v != "" && p.evr() != v && !strings.HasPrefix(p.evr(), v+".") && !strings.HasPrefix(p.evr(), v+"-") {
			continue
		}
		if img == nil || newerRPM(p, *img) {
			img = &pkgs[i]
		}
	}
	if img == nil {
		what := spec.Package
		if spec.Version != "" {
			what += " " + spec.Version + "*"
		}
		return nil, fmt.Errorf("%w: no %s for %s in %s", ErrNotFound, what, arch, repo)
	}
	out := []rpmPackage{*img}
	for _, name := range spec.Modules {
		var found *rpmPackage
		for i, p := range pkgs {
			if p.Name == name && p.Arch == arch && p.evr() == img.evr() && p.Epoch == img.Epoch {
				found = &pkgs[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%w: %s-%s.%s has no %s of the same build in %s", ErrNotFound, img.Name, img.evr(), arch, name, repo)
		}
		out = append(out, *found)
	}
	for _, p := range out {
		if p.SumType != "sha256" {
			return nil, fmt.Errorf("%w: %s: repodata gives a %s checksum; vmrunner needs sha256", ErrBadInput, p.Location, p.SumType)
		}
		if !isLocalPath(p.Location) {
			return nil, fmt.Errorf("read %s: bad package location %q", repo, p.Location)
		}
	}
	return out, nil
}

// rpmKeyring loads the key the packages must be signed with: the spec's
// file, or the distro's published key fetched from KeyURL.
func rpmKeyring(ctx context.Context, f *fetcher, spec RPMSpec) (openpgp.EntityList, string, error) {
	var data []byte
	where := spec.Key
	if spec.Key != "" {
		var err error
		if data, err = inputfile.ReadFile(ctx, spec.Key, 1<<20); err != nil {
			return nil, "", inputError("rpm.key", err)
		}
	} else {
		var err error
		where = spec.KeyURL
		if data, err = f.readAll(ctx, spec.KeyURL, 1<<20); err != nil {
			return nil, "", err
		}
	}
	kr, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil || len(kr) == 0 {
		kr, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil || len(kr) == 0 {
		return nil, "", fmt.Errorf("%w: read key %s: no OpenPGP key in it (%v)", ErrBadInput, where, err)
	}
	return kr, where, nil
}

// verifyRPM checks an .rpm's OpenPGP signature against keyring, and its
// header and payload digests. At least one signature must be made by a key
// of the keyring.
func verifyRPM(blob string, keyring openpgp.EntityList) error {
	fh, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, sigs, err := rpmutils.Verify(fh, keyring)
	if err != nil {
		var nf rpmutils.KeyNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("%w: signed by key %016X, which the keyring does not hold", ErrSignature, nf.KeyID)
		}
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	for _, s := range sigs {
		if s.Signer != nil {
			return nil
		}
	}
	return fmt.Errorf("%w: not signed", ErrSignature)
}

// rpmItem is one package to fetch: its URL, the SHA-256 primary (or a
// lock) gives, and its name for messages.
type rpmItem struct{ url, sha, label string }

func (r *rpmResolution) items() []rpmItem {
	var out []rpmItem
	for _, p := range r.Packages {
		out = append(out, rpmItem{url: r.Base + "/" + p.Location, sha: p.Sum, label: p.Name + "-" + p.evr() + "." + p.Arch})
	}
	return out
}

// cacheRPMs downloads the packages (checked against their SHA-256),
// verifies their signatures and extracts them into kernels/<key>/. Nothing
// is extracted before every package's signature verified.
func cacheRPMs(ctx context.Context, f *fetcher, items []rpmItem, spec RPMSpec, arch Arch, origin Origin, opts Options) (*Kernel, error) {
	c, log := opts.Cache, opts.Logger
	shas := make([]string, len(items))
	for i, it := range items {
		if !text.IsSHA256Hex(it.sha) {
			return nil, fmt.Errorf("prepare %s: bad sha256 %q", it.label, it.sha)
		}
		shas[i] = it.sha
	}
	key := combinedKey("rpm", shas...)
	return c.cacheKernel(ctx, key, path.Base(items[0].url), arch, origin, log, func(tmp string) (debContents, error) {
		keyring, where, err := rpmKeyring(ctx, f, spec)
		if err != nil {
			return debContents{}, err
		}
		var blobs []string
		for _, it := range items {
			blob, err := c.fetchBlob(ctx, f, it.url, it.sha)
			if err != nil {
				return debContents{}, err
			}
			if err := verifyRPM(blob, keyring); err != nil {
				os.Remove(blob) // whole, but not what the key vouches for
				return debContents{}, fmt.Errorf("verify %s with %s: %w", it.url, where, err)
			}
			blobs = append(blobs, blob)
		}
		var all debContents
		for i, blob := range blobs {
			start := time.Now()
			got, err := extractRPM(ctx, blob, tmp)
			if err != nil {
				return debContents{}, fmt.Errorf("extract %s: %w", items[i].url, err)
			}
			if err := mergeContents(&all, got, path.Base(items[i].url)); err != nil {
				return debContents{}, err
			}
			log.Info("extracted", "package", items[i].label, "duration", time.Since(start).Round(time.Millisecond))
		}
		if all.Vmlinuz == "" {
			return debContents{}, fmt.Errorf("prepare %s: %w: no kernel image (lib/modules/<release>/vmlinuz or boot/vmlinuz-*) in it",
				items[0].label, ErrNotAKernel)
		}
		return all, nil
	})
}

// extractRPM unpacks from an .rpm's payload (cpio, compressed as its
// header says) what booting needs, as extractDeb does for a .deb.
func extractRPM(ctx context.Context, blob, dir string) (debContents, error) {
	fh, err := os.Open(blob)
	if err != nil {
		return debContents{}, err
	}
	defer fh.Close()
	rpm, err := rpmutils.ReadRpm(fh)
	if err != nil {
		return debContents{}, fmt.Errorf("%w: not an RPM: %v", ErrNotAKernel, err)
	}
	pr, err := rpm.PayloadReaderExtended()
	if err != nil {
		return debContents{}, fmt.Errorf("read payload: %w", err)
	}
	var c debContents
	for {
		if err := ctx.Err(); err != nil {
			return debContents{}, err
		}
		fi, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return debContents{}, fmt.Errorf("read payload: %w", err)
		}
		const typeMask, typeDir, typeReg = 0o170000, 0o040000, 0o100000
		mode := fi.Mode() & typeMask
		isReg := mode == typeReg && !pr.IsLink() // a hard link's data comes with the last of its group
		if err := c.add(dir, fi.Name(), mode == typeDir, isReg, pr); err != nil {
			return debContents{}, err
		}
	}
	if c.Release == "" && c.Vmlinuz != "" {
		c.Release = strings.TrimPrefix(strings.TrimPrefix(c.Vmlinuz, "boot/vmlinuz-"), "boot/vmlinux-")
	}
	return c, nil
}

// resolveRPMPinned resolves exactly the packages a lock pinned, still
// verifying their signatures against the key.
func resolveRPMPinned(ctx context.Context, spec RPMSpec, pin Origin, arch Arch, opts Options) (*Kernel, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(pin.Files) == 0 {
		return nil, fmt.Errorf("%w: lock: rpm pin without files; run vmrunner lock again", ErrBadInput)
	}
	var items []rpmItem
	for _, fl := range pin.Files {
		if !strings.HasPrefix(fl.URL, "http://") && !strings.HasPrefix(fl.URL, "https://") {
			return nil, fmt.Errorf("%w: lock: bad rpm pin %q", ErrBadInput, fl.URL)
		}
		items = append(items, rpmItem{url: fl.URL, sha: fl.SHA256, label: path.Base(fl.URL)})
	}
	f := &fetcher{client: opts.Client, log: opts.Logger, fix: "set repo: in the rpm source"}
	return cacheRPMs(ctx, f, items, spec.withFamily(), arch, pin, opts)
}
