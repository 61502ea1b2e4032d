package kernels

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

// Spec is the `source:` of a kernel in matrix.yaml. Exactly one field is set.
type Spec struct {
	Debian *DebianSpec `yaml:"debian" json:"debian,omitempty"`
	// Ubuntu is a kernel of Ubuntu's archive (ubuntu.go).
	Ubuntu *UbuntuSpec `yaml:"ubuntu" json:"ubuntu,omitempty"`
	// RPM is a kernel of an RPM repository (rpm.go).
	RPM *RPMSpec `yaml:"rpm" json:"rpm,omitempty"`
	// OCI is an image reference: ghcr.io/cilium/ci-kernels:6.1, or pinned
	// with @sha256:<hex>.
	OCI string `yaml:"oci" json:"oci,omitempty"`
	// Mainline is an Ubuntu mainline build: "v6.5" or {version, url}.
	Mainline *MainlineSpec `yaml:"ubuntu-mainline" json:"ubuntu-mainline,omitempty"`
	// Deb is one or more kernel .debs by URL or local file.
	Deb *DebSpec `yaml:"deb" json:"deb,omitempty"`
	// File is a kernel built by hand: the image, modules and config.
	File *FileSpec `yaml:"file" json:"file,omitempty"`
	// Build builds a kernel from a source tree.
	Build *BuildSpec `yaml:"build" json:"build,omitempty"`

	// BTF is not a kind of source but an option of any: the kernel's BTF
	// as a separate file, used in the guest in place of the kernel's own
	// (see btf.go).
	BTF *BTFSpec `yaml:"btf" json:"btf,omitempty"`
}

// Kinds lists the kinds of source as spelled in matrix.yaml; Spec's other
// keys (btf) are options of any kind.
func Kinds() []string {
	return []string{"debian", "ubuntu", "rpm", "oci", "ubuntu-mainline", "deb", "file", "build"}
}

// Kind names the kind of source that is set, as spelled in matrix.yaml.
func (s Spec) Kind() string {
	switch {
	case s.Debian != nil:
		return "debian"
	case s.Ubuntu != nil:
		return "ubuntu"
	case s.RPM != nil:
		return "rpm"
	case s.OCI != "":
		return "oci"
	case s.Mainline != nil:
		return "ubuntu-mainline"
	case s.Deb != nil:
		return "deb"
	case s.File != nil:
		return "file"
	case s.Build != nil:
		return "build"
	}
	return ""
}

// Rebase makes the relative paths of local sources relative to dir, the
// directory of the matrix file.
func (s *Spec) Rebase(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if s.Deb != nil {
		abs(&s.Deb.File)
		for i := range s.Deb.Files {
			abs(&s.Deb.Files[i])
		}
	}
	if s.Mainline != nil {
		abs(&s.Mainline.Keyring)
	}
	if s.Ubuntu != nil {
		abs(&s.Ubuntu.Keyring)
	}
	if s.RPM != nil {
		abs(&s.RPM.Key)
	}
	if s.BTF != nil {
		abs(&s.BTF.File)
	}
	if s.File != nil {
		abs(&s.File.Kernel)
		abs(&s.File.Modules)
		abs(&s.File.Config)
	}
	if s.Build != nil {
		abs(&s.Build.Tree)
		for i, f := range s.Build.Config {
			// A bare name is a fragment shipped with vmrunner.
			if strings.ContainsRune(f, '/') || strings.HasSuffix(f, ".config") {
				abs(&s.Build.Config[i])
			}
		}
	}
}

// DebianSpec selects the newest linux-image of a Debian suite.
type DebianSpec struct {
	// Suite is a Debian suite or codename: bullseye, bookworm, trixie,
	// bookworm-backports, sid...
	Suite string `yaml:"suite" json:"suite"`
	// Mirror is the archive root; default DefaultMirror.
	Mirror string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	// Flavour is the kernel flavour; default "amd64" on x86_64 and
	// "cloud-arm64" on arm64.
	Flavour string `yaml:"flavour,omitempty" json:"flavour,omitempty"`
}

// DefaultMirror is the official Debian mirror.
const DefaultMirror = "http://deb.debian.org/debian"

// MainlineSpec selects a build of kernel.ubuntu.com/mainline. In
// matrix.yaml it is either the version alone, `ubuntu-mainline: v6.5`, or
// a mapping `{version: v6.5, url: http://mirror/mainline}`.
type MainlineSpec struct {
	// Version is the directory name on the server: v6.5, v5.15.120.
	Version string `json:"version"`
	// URL is the root holding the version directories; default
	// DefaultMainlineURL.
	URL string `json:"url,omitempty"`
	// Keyring is an OpenPGP keyring (binary or armored, relative to the
	// matrix file) holding the key CHECKSUMS.gpg must verify with: the
	// Kernel PPA key, MainlineKeyFingerprint. Without it CHECKSUMS is
	// trusted as served, with a warning.
	Keyring string `json:"keyring,omitempty"`
}

// DefaultMainlineURL is where Ubuntu publishes mainline kernel builds.
const DefaultMainlineURL = "https://kernel.ubuntu.com/mainline"

// UnmarshalYAML accepts a version scalar or a {version, url} mapping.
func (m *MainlineSpec) UnmarshalYAML(n *yaml.Node) error {
	const want = "expected a version like v6.5 or {version: v6.5, url: URL, keyring: FILE}"
	switch n.Kind {
	case yaml.ScalarNode:
		m.Version = n.Value
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: %s: expected a string", want, k.Value)
			}
			switch k.Value {
			case "version":
				m.Version = v.Value
			case "url":
				m.URL = v.Value
			case "keyring":
				m.Keyring = v.Value
			default:
				return fmt.Errorf("unknown key %q; allowed keys: version, url, keyring", k.Value)
			}
		}
	default:
		return fmt.Errorf("%s", want)
	}
	if !validMainlineVersion(m.Version) {
		return fmt.Errorf("%s, got %q", want, m.Version)
	}
	if m.URL != "" && !strings.HasPrefix(m.URL, "http://") && !strings.HasPrefix(m.URL, "https://") {
		return fmt.Errorf("url: expected an http(s) URL, got %q", m.URL)
	}
	return nil
}

// DebSpec is a kernel shipped as .deb files: the image package and,
// optionally, a separate modules package.
type DebSpec struct {
	// URL and SHA256 fetch one .deb; the checksum is required.
	URL    string `yaml:"url" json:"url,omitempty"`
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
	// URLs and SHA256s fetch several (image and modules), pairwise.
	URLs    []string `yaml:"urls" json:"urls,omitempty"`
	SHA256s []string `yaml:"sha256s" json:"sha256s,omitempty"`
	// File and Files are local .debs, relative to the matrix file.
	File  string   `yaml:"file" json:"file,omitempty"`
	Files []string `yaml:"files" json:"files,omitempty"`
}

// FileSpec is a kernel on local disk, as left by `make`: paths relative to
// the matrix file.
type FileSpec struct {
	Kernel  string `yaml:"kernel" json:"kernel"`             // bzImage, Image(.gz) or vmlinux
	Modules string `yaml:"modules" json:"modules,omitempty"` // lib/modules/<release>
	Config  string `yaml:"config" json:"config,omitempty"`   // .config
}

// BuildSpec builds a kernel from a source tree.
type BuildSpec struct {
	Tree string `yaml:"tree" json:"tree"`
	// Config lists config fragments merged onto defconfig: names of the
	// fragments in kernels/config (bpf, virtio, ...) or paths.
	Config []string `yaml:"config" json:"config,omitempty"`
	// Arch is the target; default the arch being resolved.
	Arch string `yaml:"arch" json:"arch,omitempty"`
	// Pahole generates the kernel's BTF from vmlinux's DWARF after the
	// build (pahole --btf_encode_detached, as btfhub does) and keeps it as
	// the kernel's external BTF, used when the kernel has none of its own:
	// for a kernel built without CONFIG_DEBUG_INFO_BTF (fragments nobtf and
	// dwarf).
	Pahole bool `yaml:"pahole" json:"pahole,omitempty"`
}

// Validate checks what a matrix parser can check in a source without
// touching the network or the disk.
func (s Spec) Validate() error {
	if s.BTF != nil {
		if err := s.BTF.Validate(); err != nil {
			return err
		}
	}
	switch {
	case s.Ubuntu != nil:
		return s.Ubuntu.Validate()
	case s.RPM != nil:
		return s.RPM.Validate()
	case s.OCI != "":
		if _, err := name.ParseReference(s.OCI); err != nil {
			return fmt.Errorf("oci: %v; expected a reference like ghcr.io/cilium/ci-kernels:6.1", err)
		}
	case s.Deb != nil:
		if _, err := s.Deb.items(); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": "))
		}
	case s.File != nil:
		if s.File.Kernel == "" {
			return errors.New("file: missing kernel: the bzImage, Image or vmlinux make built")
		}
	case s.Build != nil:
		if s.Build.Tree == "" {
			return errors.New("build: missing tree: a Linux source directory")
		}
		if s.Build.Arch != "" {
			if _, err := ParseArch(s.Build.Arch); err != nil {
				return fmt.Errorf("build.arch: %v", err)
			}
		}
		if s.Build.Pahole && (len(s.Build.Config) == 0 || slices.Contains(s.Build.Config, "btf")) {
			return errors.New("build.pahole: the fragments include btf (the default ones do): the kernel would have BTF of its own; list config: with nobtf and dwarf instead, e.g. [bpf, nobtf, dwarf, kprobes, virtio, 9p, pvpanic]")
		}
		if s.Build.Pahole && s.BTF != nil {
			return errors.New("build.pahole and btf: both give the kernel's BTF; keep one")
		}
	}
	return nil
}
