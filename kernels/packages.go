package kernels

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"

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

// kernelPackage matches the linux-image packages of one flavour. The ABI
// (5.10.0-32, 6.1.0-50, 6.12.117+deb13) has no dash-separated words, so
// flavour "amd64" does not match "rt-amd64" or "cloud-amd64". The signed
// linux-image-<abi>-<flavour> is not used: in sid it is an empty package
// depending on linux-binary-* and linux-modules-*.
func kernelPackage(flavour string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-image-[0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-[0-9]+)?(?:\+[0-9A-Za-z.~]+)?-` +
		regexp.QuoteMeta(flavour) + `-unsigned$`)
}

// newestKernel scans a Packages index for the newest kernel of flavour.
// The index is ~50 MB: paragraphs are
// skipped line by line until their Package field matches, and only those
// few are decoded.
func newestKernel(r io.Reader, flavour string) (debPackage, error) {
	match := kernelPackage(flavour)
	var (
		best     *debPackage
		para     bytes.Buffer
		keep     bool // the current paragraph matched
		skipping bool // the current paragraph did not match
	)
	finish := func() error {
		defer func() { para.Reset(); keep, skipping = false, false }()
		if !keep {
			return nil
		}
		var p control.BinaryIndex
		if err := control.Unmarshal(&p, bytes.NewReader(para.Bytes())); err != nil {
			return fmt.Errorf("parse Packages entry: %w", err)
		}
		if p.Filename == "" || p.SHA256 == "" || p.Size <= 0 {
			return fmt.Errorf("parse Packages entry %s: missing Filename, Size or SHA256", p.Package)
		}
		if b := best; b != nil {
			v, err := version.Parse(b.Version)
			if err == nil && version.Compare(p.Version, v) <= 0 {
				return nil
			}
		}
		best = &debPackage{Package: p.Package, Version: p.Version.String(),
			Filename: p.Filename, Size: int64(p.Size), SHA256: p.SHA256}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := finish(); err != nil {
				return debPackage{}, err
			}
			continue
		}
		if skipping {
			continue
		}
		if name, ok := bytes.CutPrefix(line, []byte("Package:")); ok {
			keep = match.Match(bytes.TrimSpace(name))
			skipping = !keep
			if skipping {
				para.Reset()
				continue
			}
		}
		para.Write(line)
		para.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return debPackage{}, fmt.Errorf("read Packages: %w", err)
	}
	if err := finish(); err != nil {
		return debPackage{}, err
	}
	if best == nil {
		return debPackage{}, ErrNotFound
	}
	return *best, nil
}
