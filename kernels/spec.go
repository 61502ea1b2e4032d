package kernels

// Spec is the `source:` of a kernel in matrix.yaml. Exactly one field is set.
type Spec struct {
	Debian *DebianSpec `yaml:"debian" json:"debian,omitempty"`
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
