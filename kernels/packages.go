package kernels

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"pault.ag/go/debian/control"
	"pault.ag/go/debian/version"
)

// debPackage is a package record from a Packages index.
type debPackage struct {
	Package  string `json:"package"`
	Version  string `json:"version"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// kernelFamily matches the kernel packages of one flavour: the unsigned
// image linux-image-<abi>-<flavour>-unsigned, and the packages a suite
// that splits its kernels (sid) has instead: the metapackage
// linux-image-<abi>-<flavour>, linux-binary(-unsigned)-<abi>-<flavour> (the
// image, usr/lib/modules/<release>/vmlinuz(.unsigned)), linux-base-<abi>-<flavour>
// (config and System.map beside it) and linux-modules-<abi>-<flavour>.
// The ABI (5.10.0-32, 6.1.0-50, 6.12.117+deb13) has no dash-separated
// words, so flavour "amd64" does not match "rt-amd64" or "cloud-amd64".
func kernelFamily(flavour string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-(image|binary-unsigned|binary|base|modules)-([0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-[0-9]+)?(?:\+[0-9A-Za-z.~]+)?)-` +
		regexp.QuoteMeta(flavour) + `(-unsigned)?$`)
}

// errNoKernelPackage is an index without a kernel of the flavour.
var errNoKernelPackage = fmt.Errorf("%w: no kernel package", ErrNotFound)

// debianKernel is the newest kernel of a flavour in an index: one unsigned
// image package, or a metapackage and the packages it stands for (Parts:
// image, base, modules).
type debianKernel struct {
	Package debPackage
	Parts   []debPackage
}

// newestKernel scans a Packages index for the newest kernel of flavour:
// the newest linux-image-<abi>-<flavour>-unsigned; in a suite that has
// none (sid), the newest linux-image-<abi>-<flavour> whose Depends name
// linux-binary-<abi>-<flavour>, with linux-binary-unsigned (else the
// signed linux-binary), linux-base and linux-modules of that ABI.
func newestKernel(r io.Reader, flavour string) (debianKernel, error) {
	match := kernelFamily(flavour)
	best, split, err := scanPackages(r, match.Match)
	if err != nil {
		return debianKernel{}, err
	}
	newest := func(ok func(name string, m []string) bool) *debPackage {
		var top *debPackage
		for name, p := range best {
			m := match.FindStringSubmatch(name)
			if !ok(name, m) {
				continue
			}
			if top != nil && !newerPackage(p, *top) {
				continue
			}
			p := p
			top = &p
		}
		return top
	}
	if img := newest(func(_ string, m []string) bool { return m[1] == "image" && m[3] == "-unsigned" }); img != nil {
		return debianKernel{Package: *img}, nil
	}
	meta := newest(func(name string, m []string) bool { return m[1] == "image" && m[3] == "" && split[name] })
	if meta == nil {
		return debianKernel{}, errNoKernelPackage
	}
	abi := match.FindStringSubmatch(meta.Package)[2]
	part := func(kinds ...string) (debPackage, bool) {
		for _, k := range kinds {
			if p, ok := best["linux-"+k+"-"+abi+"-"+flavour]; ok {
				return p, true
			}
		}
		return debPackage{}, false
	}
	k := debianKernel{Package: *meta}
	for _, kinds := range [][]string{{"binary-unsigned", "binary"}, {"base"}, {"modules"}} {
		p, ok := part(kinds...)
		if !ok {
			return debianKernel{}, fmt.Errorf("%w: %s depends on linux-%s-%s-%s, which the index lacks", ErrNotFound, meta.Package, kinds[0], abi, flavour)
		}
		k.Parts = append(k.Parts, p)
	}
	return k, nil
}

// scanPackages reads a Packages index and returns, for every package whose
// name keep accepts, its newest version; split says which of them depend
// on a linux-binary-* package (sid's kernel metapackages). The index is
// ~50 MB: paragraphs are skipped line by line until their Package field
// matches, and only those few are decoded.
func scanPackages(r io.Reader, keep func(name []byte) bool) (best map[string]debPackage, split map[string]bool, err error) {
	var (
		para     bytes.Buffer
		matched  bool // the current paragraph matched
		skipping bool // the current paragraph did not match
	)
	best, split = map[string]debPackage{}, map[string]bool{}
	finish := func() error {
		defer func() { para.Reset(); matched, skipping = false, false }()
		if !matched {
			return nil
		}
		var p control.BinaryIndex
		if err := control.Unmarshal(&p, bytes.NewReader(para.Bytes())); err != nil {
			return fmt.Errorf("parse Packages entry: %w", err)
		}
		if p.Filename == "" || p.SHA256 == "" || p.Size <= 0 {
			return fmt.Errorf("parse Packages entry %s: missing Filename, Size or SHA256", p.Package)
		}
		if b, ok := best[p.Package]; ok {
			v, err := version.Parse(b.Version)
			if err == nil && version.Compare(p.Version, v) <= 0 {
				return nil
			}
		}
		best[p.Package] = debPackage{Package: p.Package, Version: p.Version.String(),
			Filename: p.Filename, Size: int64(p.Size), SHA256: p.SHA256}
		split[p.Package] = false
		deps := p.GetDepends()
		for _, d := range deps.GetAllPossibilities() {
			if strings.HasPrefix(d.Name, "linux-binary-") {
				split[p.Package] = true
			}
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := finish(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if skipping {
			continue
		}
		if name, ok := bytes.CutPrefix(line, []byte("Package:")); ok {
			matched = keep(bytes.TrimSpace(name))
			skipping = !matched
			if skipping {
				para.Reset()
				continue
			}
		}
		para.Write(line)
		para.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read Packages: %w", err)
	}
	if err := finish(); err != nil {
		return nil, nil, err
	}
	return best, split, nil
}

// newerPackage says whether a's version is above b's.
func newerPackage(a, b debPackage) bool {
	va, err := version.Parse(a.Version)
	if err != nil {
		return false
	}
	vb, err := version.Parse(b.Version)
	if err != nil {
		return true
	}
	return version.Compare(va, vb) > 0
}
