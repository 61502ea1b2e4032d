package kernels

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The `oci:` source: a kernel shipped in a container image. Two layouts
// are understood, in the flattened image filesystem, as the projects build
// them:
//
//   - cilium/ci-kernels (ghcr.io/cilium/ci-kernels:<X.Y>, <X.Y.Z>, mainline,
//     stable, longterm, each also as -debug): /boot/vmlinuz, which is a
//     bzImage on x86_64 and the raw, uncompressed Image on arm64; the BPF
//     test modules under /usr/lib/modules/<release> with /lib a symlink to
//     usr/lib; no config (the guest has /proc/config.gz). -debug tags add
//     the ELF /boot/vmlinux, not needed. arm64 images exist only for the
//     mainline, stable and longterm builds: the X.Y tags are amd64 only.
//   - cilium/little-vm-helper kernel images
//     (quay.io/lvh-images/kernel-images:<ver>-main or
//     <ver>-<YYYYMMDD.HHMMSS>, never a bare version): a busybox image with
//     `make tar-pkg`'s output under /data/kernels/<ver>/: boot/vmlinuz-<release>,
//     config-<release>, System.map-<release>, the debug vmlinux-<release>
//     (dropped) and btf-<release>, the kernel's BTF cut out by pahole, kept
//     as the kernel's external BTF (Kernel.BTF); modules under
//     lib/modules/<release>. The rhel8.x and rhel9.x images are amd64 only.
//
// An image is pulled for platform linux/<amd64|arm64> from a multi-arch
// index (attestation entries, platform unknown/unknown, are not images), or
// is a single image whose config must name that platform: either way an
// image for another arch is refused before any layer is downloaded. It is
// cached by the digest of its manifest; a digest-pinned reference
// (@sha256:...) is honoured exactly and resolves offline once cached.
// Localhost and private-network registries are spoken to over plain HTTP
// (go-containerregistry's rule).

// ociResolution is index/oci/<key>.json: the manifest digest a reference
// resolved to for one platform.
type ociResolution struct {
	Fetched time.Time `json:"fetched"`
	Ref     string    `json:"ref"`
	Digest  string    `json:"digest"` // sha256:<hex> of the platform's image manifest
}

// resolveOCI resolves an oci: source.
func resolveOCI(ctx context.Context, refStr string, arch Arch, opts Options) (*Kernel, error) {
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return nil, fmt.Errorf("%w: oci reference %q: %v (want e.g. ghcr.io/cilium/ci-kernels:6.1)", ErrBadInput, refStr, err)
	}
	_, pinned := ref.(name.Digest)
	c, log := opts.Cache, opts.Logger
	rh := sha256.Sum256([]byte(ref.Name()))
	indexPath := filepath.Join(c.Dir, "index", "oci", fmt.Sprintf("%x_%s.json", rh[:8], arch.GOARCH()))
	origin := func(r ociResolution) Origin {
		return Origin{Type: "oci", URL: ref.Context().Name() + "@" + r.Digest, Digest: r.Digest}
	}

	// Warm path: a pinned digest never moves; a tag is trusted for a day.
	// A digest that names the image itself (as a lock pins it) is its key.
	if d, ok := ref.(name.Digest); ok && !opts.Refresh {
		if k, err := c.loadKernel(strings.TrimPrefix(d.DigestStr(), "sha256:")); err == nil && k.Arch == arch {
			k.Origin = Origin{Type: "oci", URL: d.String(), Digest: d.DigestStr()}
			return k, nil
		}
	}
	var cached ociResolution
	haveCached := readJSON(indexPath, &cached) == nil && strings.HasPrefix(cached.Digest, "sha256:")
	if haveCached && !opts.Refresh && (pinned || time.Since(cached.Fetched) < resolutionTTL) {
		if k, err := c.loadKernel(strings.TrimPrefix(cached.Digest, "sha256:")); err == nil {
			k.Origin = origin(cached)
			return k, nil
		}
	}

	img, err := pullImage(ctx, ref, arch, opts)
	if errors.Is(err, ErrUnreachable) && haveCached {
		if k, lerr := c.loadKernel(strings.TrimPrefix(cached.Digest, "sha256:")); lerr == nil {
			log.Warn("registry unreachable, using the image resolved earlier", "ref", refStr, "digest", cached.Digest, "error", err)
			k.Origin = origin(cached)
			return k, nil
		}
	}
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, ociError(ctx, refStr, err)
	}
	res := ociResolution{Fetched: time.Now().UTC(), Ref: ref.Name(), Digest: digest.String()}
	log.Info("resolved oci image", "ref", refStr, "digest", res.Digest)
	k, err := c.cacheKernel(ctx, digest.Hex, refStr, arch, origin(res), log, func(tmp string) (debContents, error) {
		return extractOCI(ctx, img, refStr, tmp)
	})
	if err != nil {
		return nil, err
	}
	if err := writeJSONAtomic(indexPath, &res); err != nil {
		return nil, err
	}
	return k, nil
}

// pullImage finds the image of ref for linux/arch: in a multi-arch index
// the entry for the platform, else the image itself, whose config must say
// linux/arch. Only manifests and the config are read: a wrong arch costs
// no layer download.
func pullImage(ctx context.Context, ref name.Reference, arch Arch, opts Options) (v1.Image, error) {
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 2}),
	}
	if opts.Client != defaultClient && opts.Client != nil && opts.Client.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Client.Transport))
	}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, ociError(ctx, ref.String(), err)
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, ociError(ctx, ref.String(), err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, ociError(ctx, ref.String(), err)
		}
		if cf.Architecture != "" && (cf.OS != "linux" || cf.Architecture != arch.GOARCH()) {
			return nil, fmt.Errorf("%w: oci image %s is a single %s/%s image (its config says so), want linux/%s; remove %s from the kernel's arch list%s",
				ErrWrongArch, ref, cf.OS, cf.Architecture, arch.GOARCH(), arch, archHint(ref))
		}
		return img, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, ociError(ctx, ref.String(), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, ociError(ctx, ref.String(), err)
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || isAttestation(m) {
			continue
		}
		have = append(have, m.Platform.OS+"/"+m.Platform.Architecture)
		if m.Platform.OS == "linux" && m.Platform.Architecture == arch.GOARCH() && (m.Platform.Variant == "" || m.Platform.Variant == "v8") {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, ociError(ctx, ref.String(), err)
			}
			return img, nil
		}
	}
	slices.Sort(have)
	return nil, fmt.Errorf("%w: oci image %s has no linux/%s variant (it has: %s); remove %s from the kernel's arch list%s",
		ErrNotFound, ref, arch.GOARCH(), strings.Join(slices.Compact(have), ", "), arch, archHint(ref))
}

// isAttestation reports whether an index entry is a build attestation
// (buildx's provenance and SBOM manifests), not an image.
func isAttestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown")
}

// archHint says which images of the known kernel repositories have arm64.
func archHint(ref name.Reference) string {
	repo := ref.Context().RepositoryStr()
	switch {
	case strings.HasSuffix(repo, "ci-kernels"):
		return " (ci-kernels builds arm64 only for its mainline, stable and longterm tags)"
	case strings.Contains(repo, "lvh-images/kernel-images"):
		return " (the little-vm-helper rhel8.x and rhel9.x kernels are amd64 only)"
	}
	return ""
}

// lvhTagRE is little-vm-helper's kernel image tag: <ver>-main or
// <ver>-<YYYYMMDD.HHMMSS>.
var lvhTagRE = regexp.MustCompile(`^.+-(main|[0-9]{8}\.[0-9]{6})$`)

// ociError classifies a registry error: a missing repository or tag is
// bad input, a registry that cannot be reached is infrastructure.
func ociError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("pull %s: %w", ref, ctx.Err())
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			hint := ""
			if r, err := name.ParseReference(ref); err == nil && strings.Contains(r.Context().RepositoryStr(), "lvh-images/") {
				if t, ok := r.(name.Tag); ok && !lvhTagRE.MatchString(t.TagStr()) {
					hint = fmt.Sprintf(" (little-vm-helper tags are <version>-main or <version>-<YYYYMMDD.HHMMSS>, e.g. %s-main)", t.TagStr())
				}
			}
			return fmt.Errorf("%w: oci image %s: no such repository or tag%s", ErrNotFound, ref, hint)
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: oci image %s: access denied (%d): the image does not exist or is private", ErrNotFound, ref, te.StatusCode)
		case te.StatusCode >= 500:
			return fmt.Errorf("pull %s: %w (%v)", ref, ErrUnreachable, err)
		}
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("pull %s: %w (%v); check the network", ref, ErrUnreachable, err)
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if slices.Contains(codes, d.Code) {
			return true
		}
	}
	return false
}

// ociKernelPath maps a file of the flattened image to where it goes in the
// kernel directory, or "" to skip it.
func ociKernelPath(name string) string {
	name = path.Clean(strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/"))
	if !filepath.IsLocal(name) {
		return ""
	}
	if rest, ok := strings.CutPrefix(name, "data/kernels/"); ok {
		_, name, ok = strings.Cut(rest, "/") // drop <version>/
		if !ok {
			return ""
		}
	}
	name = strings.TrimPrefix(name, "usr/")
	switch name {
	case "boot/vmlinuz", "boot/bzImage", "boot/Image", "boot/Image.gz":
		return "boot/vmlinuz"
	case "boot/config":
		return "boot/config"
	case "boot/vmlinux":
		return "boot/vmlinux" // the ELF, used only when there is no vmlinuz
	}
	if strings.HasPrefix(name, "boot/btf-") && strings.Count(name, "/") == 1 {
		return name // little-vm-helper's BTF, cut out by pahole
	}
	return keepDebMember(name)
}

// extractOCI writes the kernel files of img into dir.
func extractOCI(ctx context.Context, img v1.Image, ref, dir string) (debContents, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var c debContents
	var vmlinux string // an ELF vmlinux, used only when there is no vmlinuz
	for {
		if err := ctx.Err(); err != nil {
			return debContents{}, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return debContents{}, ociError(ctx, ref, fmt.Errorf("read layers: %w", err))
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := ociKernelPath(hdr.Name)
		if name == "" {
			continue
		}
		if err := writeMember(filepath.Join(dir, filepath.FromSlash(name)), tr); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue // e.g. both /boot/vmlinuz and /boot/vmlinuz-<release>
			}
			return debContents{}, fmt.Errorf("extract %s from %s: %w", name, ref, err)
		}
		switch {
		case strings.HasPrefix(name, "boot/vmlinux"):
			if c.Vmlinuz != "" { // the debug ELF after the image: not needed
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					return debContents{}, fmt.Errorf("extract %s: %w", ref, err)
				}
				continue
			}
			vmlinux = name
		case strings.HasPrefix(name, "boot/vmlinuz"):
			if c.Vmlinuz != "" && c.Vmlinuz != name {
				return debContents{}, fmt.Errorf("extract %s: %w: two kernel images (%s and %s)", ref, ErrBadInput, c.Vmlinuz, name)
			}
			c.Vmlinuz = name
		case strings.HasPrefix(name, "boot/config"):
			c.Config = name
		case strings.HasPrefix(name, "boot/btf-"):
			c.BTF = name
		case strings.HasPrefix(name, "lib/modules/"):
			rel := strings.SplitN(name, "/", 4)[2]
			if c.Release != "" && c.Release != rel {
				return debContents{}, fmt.Errorf("extract %s: %w: modules for two releases (%s and %s)", ref, ErrBadInput, c.Release, rel)
			}
			c.Release, c.Modules = rel, "lib/modules/"+rel
		}
	}
	switch {
	case c.Vmlinuz == "":
		c.Vmlinuz = vmlinux
	case vmlinux != "":
		if err := os.Remove(filepath.Join(dir, vmlinux)); err != nil {
			return debContents{}, fmt.Errorf("extract %s: %w", ref, err)
		}
	}
	if c.Vmlinuz == "" {
		return debContents{}, fmt.Errorf("extract %s: %w: the image has no /boot/vmlinuz (ci-kernels layout) or /data/kernels/<version>/boot/vmlinuz-* (little-vm-helper layout)",
			ref, ErrNotAKernel)
	}
	return c, nil
}
