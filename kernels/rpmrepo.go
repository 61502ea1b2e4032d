package kernels

import (
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	rpmutils "github.com/sassoftware/go-rpmutils"
)

// An RPM repository (createrepo's layout, read by dnf, yum and zypper):
//
//	<repo>/repodata/repomd.xml             where the metadata files are, with checksums
//	<repo>/repodata/<sum>-primary.xml.gz   every package: name, arch, version, checksum, location
//	<repo>/<location>                      the .rpm, signed with the distro's OpenPGP key
//
// (createrepo_c(8), and the repomd format in the rpm-software-management
// createrepo_c sources). The chain of trust is: repomd's checksum of primary,
// primary's checksum of each package, and the package's own OpenPGP
// signature over its header (and payload digest), checked against the key.

// repomd is the part of repodata/repomd.xml that Resolve uses.
type repomd struct {
	Data []struct {
		Type     string `xml:"type,attr"`
		Checksum struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"checksum"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
		Size int64 `xml:"size"`
	} `xml:"data"`
}

// rpmPackage is a package of primary.xml.
type rpmPackage struct {
	Name     string `json:"name"`
	Arch     string `json:"arch"`
	Epoch    string `json:"epoch,omitempty"`
	Version  string `json:"version"`
	Release  string `json:"release"`
	Location string `json:"location"` // relative to the repository root
	Size     int64  `json:"size"`
	SumType  string `json:"sum_type"` // sha256, sha512, sha (sha1)
	Sum      string `json:"sum"`
}

// evr is the package's version-release, as a kernel's rpm names it.
func (p rpmPackage) evr() string { return p.Version + "-" + p.Release }

// primaryPackage is how primary.xml spells a package.
type primaryPackage struct {
	Type    string `xml:"type,attr"`
	Name    string `xml:"name"`
	Arch    string `xml:"arch"`
	Version struct {
		Epoch string `xml:"epoch,attr"`
		Ver   string `xml:"ver,attr"`
		Rel   string `xml:"rel,attr"`
	} `xml:"version"`
	Checksum struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"checksum"`
	Location struct {
		Href string `xml:"href,attr"`
	} `xml:"location"`
	Size struct {
		Package int64 `xml:"package,attr"`
	} `xml:"size"`
}

// newHash returns the hash repodata names type, or nil for one it does
// not know.
func newHash(typ string) hash.Hash {
	switch typ {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "sha", "sha1":
		return sha1.New()
	}
	return nil
}

// checkSum compares data with a repodata checksum.
func checkSum(data []byte, typ, want string) error {
	h := newHash(typ)
	if h == nil {
		return fmt.Errorf("unknown checksum type %q", typ)
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(strings.TrimSpace(want)) {
		return fmt.Errorf("%w: %s %s, repodata says %s", ErrChecksum, typ, got, want)
	}
	return nil
}

// readPrimary fetches repomd.xml and the primary metadata it names,
// verifies primary's checksum and returns the packages keep accepts.
func (f *fetcher) readPrimary(ctx context.Context, repo string, keep func(name, arch string) bool) ([]rpmPackage, error) {
	mdURL := repo + "/repodata/repomd.xml"
	data, err := f.readAll(ctx, mdURL, 16<<20)
	if errors.Is(err, errHTTPNotFound) {
		return nil, fmt.Errorf("%w: no repodata/repomd.xml under %s: not an RPM repository (give the directory that holds repodata/)", ErrNotFound, repo)
	}
	if err != nil {
		return nil, err
	}
	var md repomd
	if err := xml.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("read %s: %w", mdURL, err)
	}
	for _, d := range md.Data {
		if d.Type != "primary" {
			continue
		}
		href := d.Location.Href
		if !isLocalPath(href) {
			return nil, fmt.Errorf("read %s: bad primary location %q", mdURL, href)
		}
		url := repo + "/" + href
		limit := d.Size
		if limit <= 0 {
			limit = 512 << 20
		}
		raw, err := f.readAll(ctx, url, limit)
		if err != nil {
			return nil, err
		}
		if err := checkSum(raw, d.Checksum.Type, d.Checksum.Value); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
		r, err := decompressMetadata(href, raw)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", url, err)
		}
		pkgs, err := scanPrimary(r, keep)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", url, err)
		}
		return pkgs, nil
	}
	return nil, fmt.Errorf("read %s: no primary metadata listed", mdURL)
}

// decompressMetadata opens a metadata file by its extension: createrepo_c
// writes .gz by default, .xz, .zst and .bz2 on request (Amazon Linux 2
// and openSUSE repositories use several).
func decompressMetadata(name string, data []byte) (io.Reader, error) {
	r := bytes.NewReader(data)
	switch path.Ext(name) {
	case ".gz":
		return decompress(formatGzip, r)
	case ".xz":
		return decompress(formatXZ, r)
	case ".zst":
		return decompress(formatZstd, r)
	case ".bz2":
		return bzip2.NewReader(r), nil
	case ".xml":
		return r, nil
	}
	return nil, fmt.Errorf("unknown compression of %s", name)
}

// scanPrimary decodes the <package> elements of primary.xml one at a time
// (EL's BaseOS primary is tens of megabytes) and keeps those keep accepts.
func scanPrimary(r io.Reader, keep func(name, arch string) bool) ([]rpmPackage, error) {
	dec := xml.NewDecoder(r)
	var out []rpmPackage
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "package" {
			continue
		}
		var p primaryPackage
		if err := dec.DecodeElement(&p, &se); err != nil {
			return nil, err
		}
		if p.Type != "" && p.Type != "rpm" || !keep(p.Name, p.Arch) {
			continue
		}
		if p.Location.Href == "" || p.Checksum.Value == "" {
			return nil, fmt.Errorf("package %s: no location or checksum", p.Name)
		}
		out = append(out, rpmPackage{Name: p.Name, Arch: p.Arch, Epoch: p.Version.Epoch, Version: p.Version.Ver,
			Release: p.Version.Rel, Location: p.Location.Href, Size: p.Size.Package,
			SumType: p.Checksum.Type, Sum: strings.ToLower(strings.TrimSpace(p.Checksum.Value))})
	}
}

// newerRPM says whether a's version-release is above b's (rpm's own
// comparison, rpmvercmp).
func newerRPM(a, b rpmPackage) bool {
	if c := rpmutils.Vercmp(a.Epoch, b.Epoch); c != 0 {
		return c > 0
	}
	if c := rpmutils.Vercmp(a.Version, b.Version); c != 0 {
		return c > 0
	}
	return rpmutils.Vercmp(a.Release, b.Release) > 0
}

// isLocalPath accepts a repository-relative, slash-separated path that
// stays inside the repository.
func isLocalPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.Contains(p, "\\") && path.Clean(p) == p && !strings.HasPrefix(p, "../") && p != ".."
}
