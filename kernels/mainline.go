package kernels

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"html"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The `ubuntu-mainline:` source: the builds of upstream kernels Ubuntu
// publishes at kernel.ubuntu.com/mainline/<version>/<arch>/, as virtme-ng
// uses them. A version directory holds linux-image-unsigned-*-generic and
// linux-modules-*-generic debs (image, and modules + config) and a CHECKSUMS
// file listing their SHA-256. Older versions keep every arch in
// <version>/ itself; both layouts are read.

var mainlineVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+(\.[0-9]+)?(-rc[0-9]+)?$`)

func validMainlineVersion(v string) bool { return mainlineVersionRE.MatchString(v) }

// mainlineResolution is index/mainline/<key>.json. A version directory
// never changes once published, so it is reused until --refresh.
type mainlineResolution struct {
	Fetched time.Time `json:"fetched"`
	Dir     string    `json:"dir"`
	Debs    []File    `json:"debs"`
}

var hrefRE = regexp.MustCompile(`href="([^"?#]+\.deb)"`)

// mainlineDebs picks the image and modules packages for arch from a
// directory listing.
func mainlineDebs(listing []byte, debArch string) (image, modules string) {
	for _, m := range hrefRE.FindAllSubmatch(listing, -1) {
		name := html.UnescapeString(string(m[1]))
		if u, err := url.PathUnescape(name); err == nil {
			name = u
		}
		name = filepath.Base(name)
		if !strings.HasSuffix(name, "_"+debArch+".deb") {
			continue
		}
		pkg, _, _ := strings.Cut(name, "_")
		switch {
		case strings.HasPrefix(pkg, "linux-image-unsigned-") && strings.HasSuffix(pkg, "-generic"):
			image = name
		case strings.HasPrefix(pkg, "linux-image-") && strings.HasSuffix(pkg, "-generic") && image == "":
			image = name // before 4.18 the image was not split into signed and unsigned
		case strings.HasPrefix(pkg, "linux-modules-") && strings.HasSuffix(pkg, "-generic"):
			modules = name
		}
	}
	return image, modules
}

// parseChecksums reads the SHA-256 lines of a mainline CHECKSUMS file:
// "<hex>  <file>".
func parseChecksums(data []byte) map[string]string {
	sums := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && validSHA256(strings.ToLower(fields[0])) {
			sums[strings.TrimPrefix(fields[1], "*")] = strings.ToLower(fields[0])
		}
	}
	return sums
}

// resolveMainline resolves an ubuntu-mainline: source.
func resolveMainline(ctx context.Context, spec MainlineSpec, arch Arch, opts Options) (*Kernel, error) {
	if !validMainlineVersion(spec.Version) {
		return nil, fmt.Errorf("%w: ubuntu-mainline version %q (want e.g. v6.5 or v5.15.120)", ErrBadInput, spec.Version)
	}
	base := strings.TrimRight(spec.URL, "/")
	if base == "" {
		base = DefaultMainlineURL
	}
	c, log := opts.Cache, opts.Logger
	bh := sha256.Sum256([]byte(base))
	indexPath := filepath.Join(c.Dir, "index", "mainline", safeName(fmt.Sprintf("%s_%s_%x", spec.Version, arch.Debian(), bh[:4]))+".json")
	f := &fetcher{client: opts.Client, log: log}

	var res mainlineResolution
	if opts.Refresh || readJSON(indexPath, &res) != nil || len(res.Debs) == 0 {
		found, err := f.lookupMainline(ctx, base, spec.Version, arch.Debian())
		if err != nil {
			return nil, err
		}
		res = found
		if err := writeJSONAtomic(indexPath, &res); err != nil {
			return nil, err
		}
	}
	items := make([]debItem, len(res.Debs))
	for i, d := range res.Debs {
		items[i] = debItem{url: d.URL, sha: d.SHA256}
	}
	return resolveDebItems(ctx, "ubuntu-mainline", items, arch, opts,
		Origin{Type: "ubuntu-mainline", Version: spec.Version, URL: res.Dir + "/"})
}

// lookupMainline lists a version directory and returns its image and
// modules debs for debArch with their published SHA-256.
func (f *fetcher) lookupMainline(ctx context.Context, base, version, debArch string) (mainlineResolution, error) {
	var dir string
	var listing []byte
	for _, d := range []string{base + "/" + version + "/" + debArch, base + "/" + version} {
		data, err := f.readAll(ctx, d+"/", 16<<20)
		if errors.Is(err, errHTTPNotFound) {
			continue
		}
		if err != nil {
			return mainlineResolution{}, err
		}
		if img, _ := mainlineDebs(data, debArch); img != "" {
			dir, listing = d, data
			break
		}
	}
	if dir == "" {
		return mainlineResolution{}, fmt.Errorf("%w: ubuntu-mainline %s has no linux-image-*-generic deb for %s under %s/%s/ (see %s/ for the versions)",
			ErrNotFound, version, debArch, base, version, base)
	}
	image, modules := mainlineDebs(listing, debArch)
	data, err := f.readAll(ctx, dir+"/CHECKSUMS", 1<<20)
	if errors.Is(err, errHTTPNotFound) {
		return mainlineResolution{}, fmt.Errorf("fetch %s/CHECKSUMS: %w: missing, nothing vouches for the debs", dir, ErrChecksum)
	}
	if err != nil {
		return mainlineResolution{}, err
	}
	sums := parseChecksums(data)
	res := mainlineResolution{Fetched: time.Now().UTC(), Dir: dir}
	for _, name := range []string{image, modules} {
		if name == "" {
			continue
		}
		sha, ok := sums[name]
		if !ok {
			return mainlineResolution{}, fmt.Errorf("read %s/CHECKSUMS: %w: no SHA-256 for %s", dir, ErrChecksum, name)
		}
		res.Debs = append(res.Debs, File{URL: dir + "/" + url.PathEscape(name), SHA256: sha})
	}
	f.log.Info("resolved ubuntu mainline kernel", "version", version, "image", image, "modules", modules)
	return res, nil
}
