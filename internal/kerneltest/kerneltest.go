package kerneltest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/kernels"
)

// Suite is the Debian suite the fixtures come from: trixie's kernels have
// the smallest module trees of the cached ones.
const Suite = "trixie"

// Debian returns the real Debian kernel for arch from the user cache. With
// VMRUNNER_SKIP_INTEGRATION set (make test-unit: no network) it is read from
// the cache alone, and a cache without it skips the test with the command
// that fills it; otherwise a cold cache downloads it from the Debian mirror.
func Debian(t testing.TB, arch kernels.Arch) *kernels.Kernel {
	t.Helper()
	opts := kernels.Options{Offline: os.Getenv("VMRUNNER_SKIP_INTEGRATION") != ""}
	if opts.Offline {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k, err := kernels.Resolve(context.Background(), "fixture", kernels.Spec{Debian: &kernels.DebianSpec{Suite: Suite}}, arch, opts)
	if opts.Offline && errors.Is(err, kernels.ErrNotCached) {
		t.Skipf("the Debian %s kernel for %s is not in the cache and make test-unit does not download: "+
			"fill the cache once with `make build && bin/vmrunner kernels pull --arch %s matrix.yaml` (or run make test)", Suite, arch, arch)
	}
	if err != nil {
		t.Fatalf("resolve the Debian %s kernel for fixtures: %v", Suite, err)
	}
	return k
}

// File is one file of a fixture.
type File struct {
	Name string // relative, slash-separated
	Data []byte
}

// Layout says where an image or package puts the kernel's files.
type Layout string

// Layouts of the fixtures.
const (
	CIKernels   Layout = "ci-kernels"   // boot/vmlinuz, boot/config, lib/modules/<release>
	LVH         Layout = "lvh"          // data/kernels/<ver>/boot/vmlinuz-<release>, .../lib/modules/<release>
	ImageDeb    Layout = "image-deb"    // boot/vmlinuz-<release> (Ubuntu linux-image-unsigned)
	ModulesDeb  Layout = "modules-deb"  // boot/config-<release>, lib/modules/<release> (Ubuntu linux-modules)
	ConfigOnly  Layout = "config-only"  // boot/config: an image without a kernel
	ModulesOnly Layout = "modules-only" // lib/modules only
	VmlinuxOnly Layout = "vmlinux-only" // boot/vmlinux (the ELF, x86_64) and lib/modules
)

// Files lays out k's image, config and the modules vmrunner's initramfs
// needs (the closure of initramfs.DefaultModules and the modules.* indexes:
// the whole tree would be hundreds of megabytes).
func Files(t testing.TB, k *kernels.Kernel, l Layout) []File {
	t.Helper()
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var mods []File
	if k.Modules != "" {
		entries, err := os.ReadDir(k.Modules)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "modules.") {
				mods = append(mods, File{e.Name(), read(filepath.Join(k.Modules, e.Name()))})
			}
		}
		closure, err := initramfs.Closure(k.Modules, initramfs.DefaultModules)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range closure {
			if m.Builtin || m.Path == "" {
				continue
			}
			rel, err := filepath.Rel(k.Modules, m.Path)
			if err != nil {
				t.Fatal(err)
			}
			mods = append(mods, File{filepath.ToSlash(rel), read(m.Path)})
		}
	}
	image := File{"boot/vmlinuz-" + k.Release, read(k.Image)}
	var config []byte
	if k.Config != "" {
		config = read(k.Config)
	}
	prefix := func(p string, fs []File) []File {
		out := make([]File, len(fs))
		for i, f := range fs {
			out[i] = File{path.Join(p, f.Name), f.Data}
		}
		return out
	}
	modDir := "lib/modules/" + k.Release
	switch l {
	case CIKernels:
		return append([]File{{"boot/vmlinuz", image.Data}, {"boot/config", config}}, prefix("usr/"+modDir, mods)...)
	case LVH:
		ver := strings.SplitN(k.Release, "-", 2)[0]
		return prefix("data/kernels/"+ver, append([]File{image, {"boot/config-" + k.Release, config}}, prefix(modDir, mods)...))
	case ImageDeb:
		return []File{image}
	case ModulesDeb:
		return append([]File{{"boot/config-" + k.Release, config}}, prefix(modDir, mods)...)
	case ConfigOnly:
		return []File{{"boot/config", config}}
	case ModulesOnly:
		return prefix(modDir, mods)
	case VmlinuxOnly:
		return append([]File{{"boot/vmlinux", read(k.Uncompressed)}}, prefix(modDir, mods)...)
	}
	t.Fatalf("unknown layout %q", l)
	return nil
}

// Tar writes files as a tar with their parent directories.
func Tar(t testing.TB, files []File) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Name); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + f.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.Data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Deb writes a .deb holding files. A .deb is an ar archive of
// debian-binary, control.tar.gz and data.tar.gz; ar's format is three
// lines of code, not worth a dependency.
func Deb(t testing.TB, pkg, version, debArch string, files []File) []byte {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: vmrunner tests\nDescription: test kernel\n", pkg, version, debArch)
	members := []File{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", gzipped(t, Tar(t, []File{{"control", []byte(control)}}))},
		{"data.tar.gz", gzipped(t, Tar(t, files))},
	}
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.Name, 1700000000, 0, 0, "100644", len(m.Data))
		b.Write(m.Data)
		if len(m.Data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// SHA256 is the hex SHA-256 of data.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Registry starts an in-process OCI registry and returns its host:port
// (127.0.0.1, which go-containerregistry speaks plain HTTP to).
func Registry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Image is a single-layer linux image holding files.
func Image(t testing.TB, arch kernels.Arch, files []File) v1.Image {
	t.Helper()
	data := Tar(t, files)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch.GOARCH()
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.OCIManifestSchema1)
}

// Push pushes an image and returns its digest.
func Push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// PushIndex pushes a multi-arch index of images and returns its digest.
func PushIndex(t testing.TB, ref string, imgs map[kernels.Arch]v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for arch, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch.GOARCH()},
		}})
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String()
}

func sha1Hex(data []byte) string {
	h := sha1.Sum(data)
	return hex.EncodeToString(h[:])
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
