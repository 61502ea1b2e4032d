package vmrunner

import (
	"os"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/initramfs"
)

// GuestFile is a host file a check needs inside the guest, such as a BPF
// object for the verifier check.
type GuestFile struct {
	Host  string // path on the host, absolute or relative to the working directory
	Guest string // absolute path in the guest
	Exec  bool   // executable (mode 0755), else 0644
}

// paramsResolver is implemented by check parameter types that need more
// than the YAML around them: files relative to the matrix file, checked for
// existence. resolve runs after a successful strict decode, with n the
// parameters' node; it reports problems through env.errorf and lists the
// host files the guest needs.
type paramsResolver interface {
	resolve(env *paramsEnv, n *yaml.Node)
}

// paramsEnv is what a paramsResolver may use.
type paramsEnv struct {
	dir   string // the matrix file's directory
	path  string // "checks[2].verifier", for messages
	p     *matrixParser
	files []GuestFile
}

func (e *paramsEnv) errorf(n *yaml.Node, format string, args ...any) {
	e.p.errorf(n, "%s: "+format, append([]any{e.path}, args...)...)
}

// extraFiles lists the host files the checks of m need in the guest.
func extraFiles(m *Matrix) []initramfs.File {
	var files []initramfs.File
	for _, c := range m.Checks {
		for _, f := range c.Files {
			files = append(files, f.initramfs())
		}
	}
	return files
}

func (f GuestFile) initramfs() initramfs.File {
	mode := os.FileMode(0o644)
	if f.Exec {
		mode = 0o755
	}
	return initramfs.File{Path: f.Guest, Source: f.Host, Mode: mode}
}
