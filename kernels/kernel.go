package kernels

import (
	"errors"
	"fmt"
	"runtime"
)

// Arch is a guest architecture as written in matrix.yaml.
type Arch string

// Supported architectures.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// Arches lists every supported architecture.
var Arches = []Arch{X86_64, ARM64}

// ParseArch accepts the matrix spelling and the Debian/Go aliases.
func ParseArch(s string) (Arch, error) {
	switch s {
	case "x86_64", "amd64":
		return X86_64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown arch %q (want x86_64 or arm64)", s)
}

// Debian returns the Debian architecture name (amd64, arm64).
func (a Arch) Debian() string {
	if a == X86_64 {
		return "amd64"
	}
	return string(a)
}

// GOARCH returns the Go architecture name.
func (a Arch) GOARCH() string { return a.Debian() }

// Host returns the architecture of the machine running vmrunner.
func Host() Arch {
	a, err := ParseArch(runtime.GOARCH)
	if err != nil {
		return Arch(runtime.GOARCH)
	}
	return a
}

// Kernel is a resolved, cached kernel ready to boot. Every source produces one.
type Kernel struct {
	Name string `json:"name"` // name in the matrix
	Arch Arch   `json:"arch"`
	// Release is the kernel release string (what uname -r will print).
	Release string `json:"release"`
	// Image is the kernel as shipped: a bzImage on x86_64, the (usually
	// gzip-compressed) Image on arm64.
	Image string `json:"image"`
	// Uncompressed is the fastest image to boot under emulation, or "":
	// on x86_64 the ELF vmlinux extracted from the bzImage, set only when
	// it has a PVH entry point; on arm64 the raw, uncompressed Image.
	Uncompressed string `json:"uncompressed,omitempty"`
	// Config is the path to the kernel's .config, or "".
	Config string `json:"config,omitempty"`
	// Modules is the path to lib/modules/<release>, or "" for a kernel
	// without modules.
	Modules string `json:"modules,omitempty"`
	// BTF is the path to the kernel's BTF as a separate file (raw BTF, as
	// /sys/kernel/btf/vmlinux and pahole --btf_encode_detached write it),
	// or "": shipped by the source (little-vm-helper's btf-<release>) or
	// given by the source's btf option.
	BTF string `json:"btf,omitempty"`
	// BTFFrom says where BTF came from, for the guest's messages.
	BTFFrom string `json:"btf_from,omitempty"`
	// BTFReplaces is set when the matrix gave BTF: the guest uses it in
	// place of the kernel's own. BTF a source ships is used only when the
	// kernel has none.
	BTFReplaces bool `json:"btf_replaces,omitempty"`
	// SHA256 identifies what was downloaded (the .deb for Debian kernels).
	SHA256 string `json:"sha256"`
	Origin Origin `json:"origin"`
}

// Origin says where a kernel came from.
type Origin struct {
	Type    string `json:"type"`              // "debian", ...
	Package string `json:"package,omitempty"` // Debian package name
	Version string `json:"version,omitempty"` // package version
	Suite   string `json:"suite,omitempty"`
	URL     string `json:"url,omitempty"`
	// Digest is the manifest digest of an OCI image (sha256:<hex>).
	Digest string `json:"digest,omitempty"`
	// Files lists what the kernel was made of, each with its SHA-256:
	// the .debs of deb and ubuntu-mainline sources, the local files of a
	// file source. A lock pins them.
	Files []File `json:"files,omitempty"`
}

// File is one input of a kernel: a URL or a local path, and its SHA-256.
type File struct {
	URL    string `json:"url,omitempty"`
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256"`
}

// Errors for callers to match with errors.Is. Bad input (the user can fix the
// matrix) wraps ErrBadInput; everything else is infrastructure.
var (
	ErrBadInput    = errors.New("bad input")
	ErrNotFound    = fmt.Errorf("%w: not found", ErrBadInput)
	ErrNotAKernel  = fmt.Errorf("%w: not a kernel image", ErrBadInput)
	ErrWrongArch   = fmt.Errorf("%w: kernel built for another architecture", ErrBadInput)
	ErrChecksum    = errors.New("checksum mismatch")
	ErrSignature   = errors.New("bad signature")
	ErrUnreachable = errors.New("mirror unreachable")
)
