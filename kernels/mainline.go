package kernels

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/vmrunner/vmrunner/internal/text"
)

// The `ubuntu-mainline:` source: the builds of upstream kernels Ubuntu
// publishes at kernel.ubuntu.com/mainline/<version>/, as virtme-ng uses
// them. Two layouts exist, and both are read the same way, by following
// the links of the version's page relative to the folder they point into:
//
//   - per arch (v5.6.18 / v5.7.2 and later): <version>/ is a page whose
//     links are amd64/linux-…deb, arm64/linux-…deb; each <version>/<arch>/
//     folder holds its debs, a CHECKSUMS file for them, CHECKSUMS.gpg, a
//     build log and a status file.
//   - flat (up to v5.6.17 / v5.7.1, v4.18 among them): the debs of every
//     arch directly in <version>/, with one CHECKSUMS for all of them and
//     COMMIT, BUILD.LOG.<arch> and the packaging patches.
//
// A kernel is linux-image-unsigned-<abi>-generic (linux-image-<abi>-generic
// on builds old enough not to be split into signed and unsigned) and
// linux-modules-<abi>-generic, which carries the modules and the config
// (builds before the image/modules split have no modules deb: the image
// deb has everything). Other flavours (-generic-64k on arm64, -lowlatency,
// -lpae) are left alone.
//
// A folder can hold more than one build (v5.16/amd64 held two build
// stamps): the newest stamp whose image, and modules when the folder has
// modules debs, are listed in the Sha256 section of CHECKSUMS is used, and
// image and modules always come from that one build. CHECKSUMS is verified
// against CHECKSUMS.gpg when a keyring is given (MainlineSpec.Keyring: the
// Kernel PPA key, fingerprint MainlineKeyFingerprint, from
// keyserver.ubuntu.com); without one a warning says that only the checksums
// vouch for the debs. Builds fail or arrive late per arch: an arch without
// a build is named with the page's status line and the nearest point
// releases of the same series that have a build for it.

// MainlineKeyFingerprint is the key Ubuntu's mainline builder signs
// CHECKSUMS with: "Kernel PPA <kernel-ppa@canonical.com>", published on
// keyserver.ubuntu.com and quoted by wiki.ubuntu.com/Kernel/MainlineBuilds.
const MainlineKeyFingerprint = "60AA7B6F30434AE68E569963E50C6A0917C622B0"

var mainlineVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+(\.[0-9]+)?(-rc[0-9]+)?$`)

func validMainlineVersion(v string) bool { return mainlineVersionRE.MatchString(v) }

// mainlineResolution is index/mainline/<key>.json. A version directory
// never changes once published, so it is reused until --refresh.
type mainlineResolution struct {
	Fetched time.Time `json:"fetched"`
	Dir     string    `json:"dir"`
	Stamp   string    `json:"stamp,omitempty"`
	// Signer is the fingerprint of the key that signed CHECKSUMS, or "" when
	// no keyring was given.
	Signer string `json:"signer,omitempty"`
	Debs   []File `json:"debs"`
}

// mainlineDeb is one kernel deb a version page links to.
type mainlineDeb struct {
	URL   string // absolute
	Dir   string // the folder holding it, without the trailing slash
	Name  string // file name, as CHECKSUMS lists it
	Kind  string // "image", "image-unsplit" or "modules"
	Stamp string // build stamp: the last dot-separated part of the version
}

var hrefRE = regexp.MustCompile(`(?i)href\s*=\s*"([^"#?]*)"`)

// pageLinks returns the links of a directory page, resolved against the
// page's URL; only those below the page's own URL are kept.
func pageLinks(page string, body []byte) []string {
	base, err := url.Parse(page)
	if err != nil {
		return nil
	}
	var links []string
	for _, m := range hrefRE.FindAllSubmatch(body, -1) {
		ref, err := url.Parse(html.UnescapeString(string(m[1])))
		if err != nil {
			continue
		}
		abs := base.ResolveReference(ref).String()
		if abs != page && strings.HasPrefix(abs, page) && !slices.Contains(links, abs) {
			links = append(links, abs)
		}
	}
	return links
}

// parseMainlineDeb reads a link to a deb of the generic flavour for
// debArch; ok is false for anything else (headers, other flavours, other
// arches).
func parseMainlineDeb(link, debArch string) (mainlineDeb, bool) {
	dir, name := path.Split(link)
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	base, ok := strings.CutSuffix(name, "_"+debArch+".deb")
	if !ok {
		return mainlineDeb{}, false
	}
	pkg, version, ok := strings.Cut(base, "_")
	if !ok || !strings.HasSuffix(pkg, "-generic") {
		return mainlineDeb{}, false
	}
	d := mainlineDeb{URL: link, Dir: strings.TrimSuffix(dir, "/"), Name: name}
	if i := strings.LastIndexByte(version, '.'); i >= 0 {
		d.Stamp = version[i+1:]
	}
	if d.Stamp == "" || strings.Trim(d.Stamp, "0123456789") != "" {
		return mainlineDeb{}, false
	}
	switch {
	case strings.HasPrefix(pkg, "linux-image-unsigned-"):
		d.Kind = "image"
	case strings.HasPrefix(pkg, "linux-image-") && !strings.HasPrefix(pkg, "linux-image-extra-"):
		d.Kind = "image-unsplit" // before the signed/unsigned split
	case strings.HasPrefix(pkg, "linux-modules-") && !strings.HasPrefix(pkg, "linux-modules-extra-"):
		d.Kind = "modules"
	default:
		return mainlineDeb{}, false
	}
	return d, true
}

// parseChecksums reads the Sha256 section of a mainline CHECKSUMS file:
//
//	# Checksums-Sha1:
//	<40 hex>  <file>
//	# Checksums-Sha256:
//	<64 hex>  <file>
//
// A file without section headers is read for its 64-hex lines.
func parseChecksums(data []byte) map[string]string {
	sums := make(map[string]string)
	sections := bytes.Contains(data, []byte("Checksums-"))
	in256 := !sections
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "#"); ok {
			if h, ok := strings.CutPrefix(strings.TrimSpace(rest), "Checksums-"); ok {
				in256 = strings.HasPrefix(strings.ToLower(h), "sha256")
			}
			continue
		}
		fields := strings.Fields(line)
		if in256 && len(fields) == 2 && text.IsSHA256Hex(strings.ToLower(fields[0])) {
			sums[strings.TrimPrefix(fields[1], "*")] = strings.ToLower(fields[0])
		}
	}
	return sums
}

// pickMainlineBuild chooses, among the debs of one folder, the newest
// build whose image (and modules, when the folder has modules debs) the
// checksums list. The unsigned image is preferred to a signed one.
func pickMainlineBuild(debs []mainlineDeb, sums map[string]string) (image, modules *mainlineDeb, unlisted []string) {
	hasModules := slices.ContainsFunc(debs, func(d mainlineDeb) bool { return d.Kind == "modules" })
	byStamp := map[string][]mainlineDeb{}
	for _, d := range debs {
		if _, ok := sums[d.Name]; !ok {
			unlisted = append(unlisted, d.Name)
			continue
		}
		byStamp[d.Stamp] = append(byStamp[d.Stamp], d)
	}
	stamps := make([]string, 0, len(byStamp))
	for s := range byStamp {
		stamps = append(stamps, s)
	}
	// Stamps are YYYYMMDDhhmm: longer is newer, then lexical.
	slices.SortFunc(stamps, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(b, a)) })
	for _, s := range stamps {
		var img, mod *mainlineDeb
		for i, d := range byStamp[s] {
			switch d.Kind {
			case "image":
				img = &byStamp[s][i]
			case "image-unsplit":
				if img == nil {
					img = &byStamp[s][i]
				}
			case "modules":
				mod = &byStamp[s][i]
			}
		}
		if img != nil && (mod != nil || !hasModules) {
			return img, mod, unlisted
		}
	}
	return nil, nil, unlisted
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
	f := &fetcher{client: opts.Client, log: log, fix: "set ubuntu-mainline's url: in matrix.yaml to a mirror"}

	var res mainlineResolution
	cached := readJSON(indexPath, &res) == nil && len(res.Debs) > 0
	if cached && spec.Keyring != "" && res.Signer == "" {
		cached = false // resolved before a keyring was given: verify now
	}
	if opts.Refresh || !cached {
		var keyring openpgp.EntityList
		if spec.Keyring != "" {
			kr, err := loadKeyring(spec.Keyring, log)
			if err != nil {
				return nil, fmt.Errorf("%w: ubuntu-mainline keyring: %v", ErrBadInput, err)
			}
			keyring = kr
		}
		found, err := f.lookupMainline(ctx, base, spec.Version, arch.Debian(), keyring)
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

// mainlineArchDebs lists the generic debs for debArch that the version
// page links to; when the page links to none but to a <debArch>/ folder,
// the folder's own listing is read.
func (f *fetcher) mainlineArchDebs(ctx context.Context, page string, body []byte, debArch string) ([]mainlineDeb, error) {
	find := func(links []string) []mainlineDeb {
		var debs []mainlineDeb
		for _, l := range links {
			if d, ok := parseMainlineDeb(l, debArch); ok {
				debs = append(debs, d)
			}
		}
		return debs
	}
	links := pageLinks(page, body)
	debs := find(links)
	folder := page + debArch + "/"
	if len(debs) == 0 && slices.Contains(links, folder) {
		data, err := f.readAll(ctx, folder, 16<<20)
		switch {
		case errors.Is(err, errHTTPNotFound):
		case err != nil:
			return nil, err
		default:
			debs = find(pageLinks(folder, data))
		}
	}
	return debs, nil
}

// lookupMainline reads a version's page and the CHECKSUMS of the folder
// holding its debs for debArch, and returns the image and modules debs of
// the newest complete build with their SHA-256.
func (f *fetcher) lookupMainline(ctx context.Context, base, version, debArch string, keyring openpgp.EntityList) (mainlineResolution, error) {
	page := base + "/" + version + "/"
	body, err := f.readAll(ctx, page, 16<<20)
	if errors.Is(err, errHTTPNotFound) {
		return mainlineResolution{}, fmt.Errorf("%w: ubuntu-mainline %s has no directory %s (see %s/ for the versions)", ErrNotFound, version, page, base)
	}
	if err != nil {
		return mainlineResolution{}, err
	}
	debs, err := f.mainlineArchDebs(ctx, page, body, debArch)
	if err != nil {
		return mainlineResolution{}, err
	}
	images := slices.IndexFunc(debs, func(d mainlineDeb) bool { return d.Kind != "modules" })
	if images < 0 {
		return mainlineResolution{}, f.missingMainlineBuild(ctx, base, version, debArch, body)
	}
	// Everything comes from the folder of the first image: one CHECKSUMS
	// vouches for it.
	dir := debs[images].Dir
	debs = slices.DeleteFunc(debs, func(d mainlineDeb) bool { return d.Dir != dir })

	sumsData, err := f.readAll(ctx, dir+"/CHECKSUMS", 1<<20)
	if errors.Is(err, errHTTPNotFound) {
		return mainlineResolution{}, fmt.Errorf("fetch %s/CHECKSUMS: %w: missing, nothing vouches for the debs", dir, ErrChecksum)
	}
	if err != nil {
		return mainlineResolution{}, err
	}
	res := mainlineResolution{Fetched: time.Now().UTC(), Dir: dir}
	if keyring != nil {
		signer, err := f.verifyMainlineChecksums(ctx, dir, sumsData, keyring)
		if err != nil {
			return mainlineResolution{}, err
		}
		res.Signer = signer
	} else {
		f.log.Warn("ubuntu-mainline CHECKSUMS not verified: no keyring given, the debs are trusted as the server lists them; "+
			"give the Kernel PPA key as ubuntu-mainline's keyring (gpg --keyserver keyserver.ubuntu.com --recv-keys "+MainlineKeyFingerprint+
			" && gpg --export "+MainlineKeyFingerprint+" > kernel-ppa.gpg)", "checksums", dir+"/CHECKSUMS")
	}
	sums := parseChecksums(sumsData)
	image, modules, unlisted := pickMainlineBuild(debs, sums)
	if image == nil {
		return mainlineResolution{}, fmt.Errorf("read %s/CHECKSUMS: %w: no build of %s for %s with its image and modules listed in the Sha256 section (unlisted: %s)",
			dir, ErrChecksum, version, debArch, strings.Join(unlisted, ", "))
	}
	res.Stamp = image.Stamp
	for _, d := range []*mainlineDeb{image, modules} {
		if d != nil {
			res.Debs = append(res.Debs, File{URL: d.URL, SHA256: sums[d.Name]})
		}
	}
	attrs := []any{"version", version, "build", image.Stamp, "image", image.Name}
	if modules != nil {
		attrs = append(attrs, "modules", modules.Name)
	}
	if len(unlisted) > 0 {
		attrs = append(attrs, "not in CHECKSUMS", strings.Join(unlisted, " "))
	}
	f.log.Info("resolved ubuntu mainline kernel", attrs...)
	return res, nil
}

// verifyMainlineChecksums checks CHECKSUMS against the detached signature
// CHECKSUMS.gpg (armored, as the builder writes it, or binary) and returns
// the signer's fingerprint.
func (f *fetcher) verifyMainlineChecksums(ctx context.Context, dir string, sums []byte, keyring openpgp.EntityList) (string, error) {
	sig, err := f.readAll(ctx, dir+"/CHECKSUMS.gpg", 64<<10)
	if errors.Is(err, errHTTPNotFound) {
		return "", fmt.Errorf("fetch %s/CHECKSUMS.gpg: %w: missing, and a keyring was given", dir, ErrSignature)
	}
	if err != nil {
		return "", err
	}
	var signer *openpgp.Entity
	if bytes.Contains(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		signer, err = openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(sums), bytes.NewReader(sig), nil)
	} else {
		signer, err = openpgp.CheckDetachedSignature(keyring, bytes.NewReader(sums), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return "", fmt.Errorf("verify %s/CHECKSUMS: %w: %v", dir, ErrSignature, err)
	}
	fp := fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint)
	f.log.Debug("CHECKSUMS signature verified", "dir", dir, "key", fp)
	return fp, nil
}

var mainlineSeriesRE = regexp.MustCompile(`^v([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$`)

// missingMainlineBuild explains a version that has no build for debArch:
// the page's status line for the arch, and the nearest point releases of
// the same series that have one.
func (f *fetcher) missingMainlineBuild(ctx context.Context, base, version, debArch string, page []byte) error {
	status := mainlineStatus(page, debArch)
	if status == "" {
		status = "it lists no " + debArch + " build"
	} else {
		status = fmt.Sprintf("its page says %q", status)
	}
	msg := fmt.Sprintf("ubuntu-mainline %s has no linux-image-*-generic deb for %s under %s/%s/ (%s)", version, debArch, base, version, status)
	if near := f.nearestMainline(ctx, base, version, debArch); len(near) > 0 {
		msg += "; the nearest point releases with a " + debArch + " build: " + strings.Join(near, ", ")
	} else {
		msg += "; see " + base + "/ for other versions"
	}
	return fmt.Errorf("%w: %s", ErrNotFound, msg)
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// mainlineStatus finds the line of a version page that reports debArch's
// build ("Test amd64/build failed (rc=2, …)", "Build for arm64 succeeded").
func mainlineStatus(page []byte, debArch string) string {
	text := html.UnescapeString(tagRE.ReplaceAllString(string(page), ""))
	var found string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.Contains(line, debArch) || !(strings.Contains(line, "failed") || strings.Contains(line, "succeeded")) {
			continue
		}
		if len(line) > 160 {
			line = line[:160] + "…"
		}
		if strings.Contains(line, "failed") {
			return line
		}
		if found == "" {
			found = line
		}
	}
	return found
}

// nearestMainline probes the point releases next to version in its series
// (at most three on each side) and returns the closest one below and above
// that has a generic build for debArch.
func (f *fetcher) nearestMainline(ctx context.Context, base, version, debArch string) []string {
	m := mainlineSeriesRE.FindStringSubmatch(version)
	if m == nil {
		return nil
	}
	root, err := f.readAll(ctx, base+"/", 16<<20)
	if err != nil {
		return nil
	}
	patch := func(s string) int { n, _ := strconv.Atoi(s); return n }
	want := patch(m[3])
	var below, above []int
	for _, l := range pageLinks(base+"/", root) {
		v := mainlineSeriesRE.FindStringSubmatch(strings.TrimSuffix(strings.TrimPrefix(l, base+"/"), "/"))
		if v == nil || v[1] != m[1] || v[2] != m[2] {
			continue
		}
		switch p := patch(v[3]); {
		case p < want:
			below = append(below, p)
		case p > want:
			above = append(above, p)
		}
	}
	slices.Sort(below)
	slices.Reverse(below)
	slices.Sort(above)
	name := func(p int) string {
		if p == 0 {
			return fmt.Sprintf("v%s.%s", m[1], m[2])
		}
		return fmt.Sprintf("v%s.%s.%d", m[1], m[2], p)
	}
	quiet := &fetcher{client: f.client, log: slog.New(slog.DiscardHandler), fix: f.fix}
	var near []string
	for _, side := range [][]int{below, above} {
		for _, p := range side[:min(3, len(side))] {
			page := base + "/" + name(p) + "/"
			body, err := quiet.readAll(ctx, page, 16<<20)
			if err != nil {
				continue
			}
			debs, err := quiet.mainlineArchDebs(ctx, page, body, debArch)
			if err == nil && slices.ContainsFunc(debs, func(d mainlineDeb) bool { return d.Kind != "modules" }) {
				near = append(near, name(p))
				break
			}
		}
	}
	return near
}
