package kerneltest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

// AptArchive is an archive in Debian's format (Ubuntu's archive has the
// same), made with the tools Debian and Ubuntu make theirs with:
// dpkg-deb --build for the packages, apt-ftparchive for Packages and
// Release, gpg --clearsign for InRelease, with a throwaway key. It is
// served from a directory by a plain file server on localhost.
type AptArchive struct {
	*httptest.Server
	Root    string // the archive's directory
	gnupg   string // GNUPGHOME holding the signing key
	Keyring string // the public key, as a binary keyring file
}

// AptPackage is one package to build: its name, version and files.
type AptPackage struct {
	Name, Version string
	Arch          kernels.Arch
	Files         []File
}

// NeedTools skips t when the archive tools are not installed, naming the
// packages that have them.
func NeedTools(t testing.TB, tools map[string]string) {
	t.Helper()
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: apt-get install %s", tool, pkg)
		}
	}
}

// NewAptArchive makes an empty archive with a fresh signing key.
func NewAptArchive(t testing.TB) *AptArchive {
	t.Helper()
	NeedTools(t, map[string]string{"dpkg-deb": "dpkg", "apt-ftparchive": "apt-utils", "gpg": "gnupg"})
	a := &AptArchive{Root: t.TempDir()}
	a.gnupg, a.Keyring = GPGKey(t, "vmrunner fixture archive <archive@example.org>")
	a.Server = httptest.NewServer(http.FileServer(http.Dir(a.Root)))
	t.Cleanup(a.Close)
	return a
}

// GPGKey makes a throwaway signing key in a new GNUPGHOME and returns the
// home and a binary keyring file holding the public key.
func GPGKey(t testing.TB, uid string) (home, keyring string) {
	t.Helper()
	// gpg-agent's socket path must be short: not under t.TempDir().
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() // no agent may be running
		os.RemoveAll(home)
	})
	Run(t, "", []string{"GNUPGHOME=" + home}, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
	keyring = filepath.Join(t.TempDir(), "keyring.gpg")
	Run(t, "", []string{"GNUPGHOME=" + home}, "gpg", "--batch", "--output", keyring, "--export", uid)
	return home, keyring
}

// Run runs a command in dir and fails t with its output if it fails.
func Run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Build makes the .deb of p with dpkg-deb under pool/main/l/linux/ and
// returns its path relative to the archive root.
func (a *AptArchive) Build(t testing.TB, p AptPackage) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), p.Name)
	for _, f := range p.Files {
		target := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Link != "" {
			if err := os.Symlink(f.Link, target); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeFile(t, target, f.Data)
	}
	control := fmt.Sprintf("Package: %s\nSource: linux\nVersion: %s\nArchitecture: %s\nMaintainer: vmrunner tests <tests@example.org>\n"+
		"Section: kernel\nPriority: optional\nDescription: Linux kernel (vmrunner fixture)\n", p.Name, p.Version, p.Arch.Debian())
	writeFile(t, filepath.Join(dir, "DEBIAN", "control"), []byte(control))
	rel := fmt.Sprintf("pool/main/l/linux/%s_%s_%s.deb", p.Name, p.Version, p.Arch.Debian())
	if err := os.MkdirAll(filepath.Join(a.Root, "pool/main/l/linux"), 0o755); err != nil {
		t.Fatal(err)
	}
	// gzip at level 1: xz of a kernel image takes seconds under load.
	Run(t, "", nil, "dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", dir, filepath.Join(a.Root, rel))
	return rel
}

// Publish writes dists/<suite>/ for the packages at paths (relative to the
// root, as Build returns them): main/binary-<arch>/Packages(.gz) by
// apt-ftparchive, Release by apt-ftparchive release, InRelease signed by
// the archive's key.
func (a *AptArchive) Publish(t testing.TB, suite string, paths map[kernels.Arch][]string) {
	t.Helper()
	dist := filepath.Join(a.Root, "dists", suite)
	os.RemoveAll(dist)
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	for arch, debs := range paths {
		bin := filepath.Join(dist, "main", "binary-"+arch.Debian())
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		// apt-ftparchive packages indexes what it finds under a path;
		// each deb goes through a directory of its own so that one
		// suite can carry a subset of the pool.
		var index []byte
		for _, deb := range debs {
			index = append(index, Run(t, a.Root, nil, "apt-ftparchive", "packages", deb)...)
		}
		writeFile(t, filepath.Join(bin, "Packages"), index)
		Run(t, bin, nil, "gzip", "-9k", "Packages")
	}
	release := Run(t, a.Root, nil, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=Ubuntu", "-o", "APT::FTPArchive::Release::Label=Ubuntu",
		"-o", "APT::FTPArchive::Release::Suite="+suite, "-o", "APT::FTPArchive::Release::Codename="+strings.Split(suite, "-")[0],
		"-o", "APT::FTPArchive::Release::Architectures=amd64 arm64", "-o", "APT::FTPArchive::Release::Components=main",
		"release", filepath.Join("dists", suite))
	writeFile(t, filepath.Join(dist, "Release"), release)
	Run(t, dist, []string{"GNUPGHOME=" + a.gnupg}, "gpg", "--batch", "--yes", "--digest-algo", "SHA512",
		"--clearsign", "--output", "InRelease", "Release")
}
