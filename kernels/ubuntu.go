package kernels

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// The ubuntu: source reads Ubuntu's archive, which has Debian's format
// (dists/<suite>/InRelease, main/binary-<arch>/Packages, pool/) with
// Ubuntu's signing keys and its own package names. A kernel is two or
// three packages of one ABI (5.15.0-91):
//
//	linux-image-unsigned-<abi>-<flavour>   boot/vmlinuz-<release>
//	linux-modules-<abi>-<flavour>          boot/config-<release>, lib/modules/<release>/
//	linux-modules-extra-<abi>-<flavour>    the rest of the modules (extra: true)
//
// The unsigned image is what vmrunner boots: the signed
// linux-image-<abi>-<flavour> carries the same kernel with a Secure Boot
// signature (and on arm64 an EFI wrapper) that QEMU's direct kernel boot
// has no use for.

// UbuntuSpec selects a kernel of an Ubuntu suite.
type UbuntuSpec struct {
	// Suite is an Ubuntu suite: focal, jammy-updates, noble-security...
	Suite string `yaml:"suite" json:"suite"`
	// Version is a version series, "5.15": the newest kernel whose ABI
	// starts with it (the GA kernel of jammy, or an HWE kernel such as
	// "6.5" in jammy-updates). Empty: the newest kernel of the suite.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// ABI is an exact ABI, "5.15.0-91"; excludes Version.
	ABI string `yaml:"abi,omitempty" json:"abi,omitempty"`
	// Flavour is the kernel flavour; default "generic".
	Flavour string `yaml:"flavour,omitempty" json:"flavour,omitempty"`
	// Extra adds linux-modules-extra-<abi>-<flavour> (for a module that
	// lives there, such as 9p).
	Extra bool `yaml:"extra,omitempty" json:"extra,omitempty"`
	// Mirror is the archive root for x86_64 (and for arm64 when Ports is
	// empty); default DefaultUbuntuMirror.
	Mirror string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	// Ports is the archive root for arm64; default Mirror when that is
	// set, else DefaultUbuntuPorts.
	Ports string `yaml:"ports,omitempty" json:"ports,omitempty"`
	// Keyring is the OpenPGP keyring InRelease must be signed with
	// (relative to the matrix file); default DefaultUbuntuKeyring.
	Keyring string `yaml:"keyring,omitempty" json:"keyring,omitempty"`
}

// Ubuntu's archives and keyring: amd64 (and i386) are on archive.ubuntu.com,
// every other architecture on ports.ubuntu.com (help.ubuntu.com, "Ports";
// btfhub's cmd/btfhub/distro_ubuntu.go reads the same two roots).
const (
	DefaultUbuntuMirror  = "http://archive.ubuntu.com/ubuntu"
	DefaultUbuntuPorts   = "http://ports.ubuntu.com/ubuntu-ports"
	DefaultUbuntuKeyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
)

var (
	ubuntuVersionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	ubuntuABIRE     = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+$`)
	ubuntuFlavourRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*$`)
)

// Validate checks the spec without touching the network.
func (s UbuntuSpec) Validate() error {
	switch {
	case !validSuite(s.Suite):
		return fmt.Errorf("ubuntu.suite: expected an Ubuntu suite like jammy-updates, got %q", s.Suite)
	case s.Version != "" && s.ABI != "":
		return fmt.Errorf("ubuntu: version and abi both given; keep one")
	case s.Version != "" && !ubuntuVersionRE.MatchString(s.Version):
		return fmt.Errorf("ubuntu.version: expected a version series like 5.15, got %q", s.Version)
	case s.ABI != "" && !ubuntuABIRE.MatchString(s.ABI):
		return fmt.Errorf("ubuntu.abi: expected an ABI like 5.15.0-91, got %q", s.ABI)
	case s.Flavour != "" && !ubuntuFlavourRE.MatchString(s.Flavour):
		return fmt.Errorf("ubuntu.flavour: expected a flavour like generic, got %q", s.Flavour)
	}
	for _, u := range []string{s.Mirror, s.Ports} {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("ubuntu: mirror %q: expected an http(s) URL", u)
		}
	}
	return nil
}

// ubuntuFamily matches the packages of one Ubuntu kernel flavour; group 1
// is the kind, group 2 the ABI.
func ubuntuFamily(flavour string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-(image-unsigned|modules|modules-extra)-([0-9]+\.[0-9]+\.[0-9]+-[0-9]+)-` +
		regexp.QuoteMeta(flavour) + `$`)
}

// pickUbuntu finds in a Packages index the newest unsigned image of spec's
// flavour that the version or ABI selects, and the modules packages of the
// same ABI and version.
func pickUbuntu(r io.Reader, spec UbuntuSpec, flavour, where string) (debianKernel, error) {
	match := ubuntuFamily(flavour)
	best, _, err := scanPackages(r, match.Match)
	if err != nil {
		return debianKernel{}, err
	}
	var img *debPackage
	for name, p := range best {
		m := match.FindStringSubmatch(name)
		switch {
		case m[1] != "image-unsigned",
			spec.ABI != "" && m[2] != spec.ABI,
			spec.Version != "" && !strings.HasPrefix(m[2], spec.Version+"."):
			continue
		}
		if img == nil || newerPackage(p, *img) {
			p := p
			img = &p
		}
	}
	if img == nil {
		want := "linux-image-unsigned-<abi>-" + flavour
		switch {
		case spec.ABI != "":
			want = "linux-image-unsigned-" + spec.ABI + "-" + flavour
		case spec.Version != "":
			want = "linux-image-unsigned-" + spec.Version + ".*-" + flavour
		}
		return debianKernel{}, fmt.Errorf("%w: no %s in %s", ErrNotFound, want, where)
	}
	abi := match.FindStringSubmatch(img.Package)[2]
	k := debianKernel{Package: *img, Parts: []debPackage{*img}}
	kinds := []string{"modules"}
	if spec.Extra {
		kinds = append(kinds, "modules-extra")
	}
	for _, kind := range kinds {
		name := "linux-" + kind + "-" + abi + "-" + flavour
		p, ok := best[name]
		switch {
		case !ok:
			return debianKernel{}, fmt.Errorf("%w: %s has no %s (its modules) in %s", ErrNotFound, img.Package, name, where)
		case p.Version != img.Version:
			return debianKernel{}, fmt.Errorf("%w: %s is %s but %s is %s in %s; the archive is mid-update, try again later",
				ErrNotFound, img.Package, img.Version, name, p.Version, where)
		}
		k.Parts = append(k.Parts, p)
	}
	return k, nil
}

// resolveUbuntu resolves an ubuntu: source through the Debian archive code.
func resolveUbuntu(ctx context.Context, spec UbuntuSpec, arch Arch, opts Options) (*Kernel, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	mirror := cmp.Or(spec.Mirror, DefaultUbuntuMirror)
	if arch == ARM64 {
		mirror = cmp.Or(spec.Ports, spec.Mirror, DefaultUbuntuPorts)
	}
	flavour := cmp.Or(spec.Flavour, "generic")
	selector := "version=" + spec.Version
	if spec.ABI != "" {
		selector = "abi=" + spec.ABI
	}
	if spec.Extra {
		selector += ",extra"
	}
	return resolveArchive(ctx, archive{
		kind:     "ubuntu",
		mirror:   strings.TrimRight(mirror, "/"),
		suite:    spec.Suite,
		flavour:  flavour,
		selector: selector,
		keyring: func(log *slog.Logger) (openpgp.EntityList, error) {
			return loadKeyringOr(spec.Keyring, DefaultUbuntuKeyring, &warnNoUbuntuKeyring,
				"Ubuntu archive keyring not found: InRelease signatures are not checked; fix with `apt-get install ubuntu-keyring` or give the source a keyring", log)
		},
		pick: func(r io.Reader, where string) (debianKernel, error) {
			return pickUbuntu(r, spec, flavour, where)
		},
		suites: "focal, jammy, noble and <suite>-updates, <suite>-security",
	}, arch, opts)
}
