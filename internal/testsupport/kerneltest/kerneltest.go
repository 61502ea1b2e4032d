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
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
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
	return DebianSuite(t, Suite, arch)
}

// DebianSuite is Debian for another suite's kernel.
func DebianSuite(t testing.TB, suite string, arch kernels.Arch) *kernels.Kernel {
	t.Helper()
	opts := kernels.Options{Offline: os.Getenv("VMRUNNER_SKIP_INTEGRATION") != ""}
	if opts.Offline {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k, err := kernels.Resolve(context.Background(), "fixture", kernels.Spec{Debian: &kernels.DebianSpec{Suite: suite}}, arch, opts)
	if opts.Offline && errors.Is(err, kernels.ErrNotCached) {
		t.Skipf("the Debian %s kernel for %s is not in the cache and make test-unit does not download: "+
			"fill the cache once with `make build && bin/vmrunner kernels pull --arch %s matrix.yaml` (or run make test)", suite, arch, arch)
	}
	if err != nil {
		t.Fatalf("resolve the Debian %s kernel for fixtures: %v", suite, err)
	}
	return k
}

// File is one file of a fixture.
type File struct {
	Name string // relative, slash-separated
	Data []byte
	Link string // a symbolic link to Link instead of a file
}

// Layout says where an image or package puts the kernel's files.
type Layout string

// Layouts of the fixtures.
const (
	CIKernels   Layout = "ci-kernels"   // boot/vmlinuz (bzImage, raw Image on arm64), usr/lib/modules/<release>, lib -> usr/lib
	LVH         Layout = "lvh"          // a busybox image with data/kernels/<X.Y>/boot/{vmlinuz,config,System.map,vmlinux,btf}-<release>, .../lib/modules/<release>
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
				mods = append(mods, File{Name: e.Name(), Data: read(filepath.Join(k.Modules, e.Name()))})
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
			mods = append(mods, File{Name: filepath.ToSlash(rel), Data: read(m.Path)})
		}
	}
	image := File{Name: "boot/vmlinuz-" + k.Release, Data: read(k.Image)}
	var config []byte
	if k.Config != "" {
		config = read(k.Config)
	}
	prefix := func(p string, fs []File) []File {
		out := make([]File, len(fs))
		for i, f := range fs {
			out[i] = File{Name: path.Join(p, f.Name), Data: f.Data, Link: f.Link}
		}
		return out
	}
	modDir := "lib/modules/" + k.Release
	switch l {
	case CIKernels:
		// ci-kernels' Dockerfile: find -name '*Image' → /boot/vmlinuz (the
		// bzImage; arm64's raw Image), modules_install into /usr with
		// `ln -s usr/lib /lib`, no config.
		vmlinuz := image.Data
		if k.Arch == kernels.ARM64 {
			vmlinuz = read(k.Uncompressed)
		}
		return append([]File{{Name: "boot/vmlinuz", Data: vmlinuz}, {Name: "lib", Link: "usr/lib"}}, prefix("usr/"+modDir, mods)...)
	case LVH:
		// little-vm-helper-images' Dockerfile: `make tar-pkg` output under
		// /data/kernels/<ver>/ of a busybox image, and the BTF pahole cut
		// out of vmlinux. The debug vmlinux is there on x86_64 only (the
		// arm64 Debian kernel has no ELF to stand in for it).
		ver := strings.Join(strings.SplitN(k.Release, ".", 3)[:2], ".")
		boot := []File{image, {Name: "boot/config-" + k.Release, Data: config},
			{Name: "boot/System.map-" + k.Release, Data: []byte("ffffffff81000000 T _text\n")},
			{Name: "boot/btf-" + k.Release, Data: BTF(t, k)}}
		if k.Arch == kernels.X86_64 {
			boot = append(boot, File{Name: "boot/vmlinux-" + k.Release, Data: read(k.Uncompressed)})
		}
		busybox := []File{{Name: "bin/busybox", Data: []byte("\x7fELF busybox")}, {Name: "bin/sh", Link: "busybox"}}
		return append(busybox, prefix("data/kernels/"+ver, append(boot, prefix(modDir, mods)...))...)
	case ImageDeb:
		return []File{image}
	case ModulesDeb:
		return append([]File{{Name: "boot/config-" + k.Release, Data: config}}, prefix(modDir, mods)...)
	case ConfigOnly:
		return []File{{Name: "boot/config", Data: config}}
	case ModulesOnly:
		return prefix(modDir, mods)
	case VmlinuxOnly:
		return append([]File{{Name: "boot/vmlinux", Data: read(k.Uncompressed)}}, prefix(modDir, mods)...)
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
		if f.Link != "" {
			if err := tw.WriteHeader(&tar.Header{Name: "./" + f.Name, Typeflag: tar.TypeSymlink, Linkname: f.Link, Mode: 0o777}); err != nil {
				t.Fatal(err)
			}
			continue
		}
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
		{Name: "debian-binary", Data: []byte("2.0\n")},
		{Name: "control.tar.gz", Data: gzipped(t, Tar(t, []File{{Name: "control", Data: []byte(control)}}))},
		{Name: "data.tar.gz", Data: gzipped(t, Tar(t, files))},
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
	host, _ := CountingRegistry(t)
	return host
}

// Fetches records the blobs a fixture registry served.
type Fetches struct {
	mu    sync.Mutex
	blobs []string
}

// Blobs lists the digests of the blobs served with GET, in order.
func (f *Fetches) Blobs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.blobs)
}

// Reset forgets what was served.
func (f *Fetches) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs = nil
}

// CountingRegistry is Registry that also records every blob it serves.
func CountingRegistry(t testing.TB) (string, *Fetches) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	f := &Fetches{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 && strings.HasPrefix(r.URL.Path, "/v2/") {
				f.mu.Lock()
				f.blobs = append(f.blobs, r.URL.Path[i+len("/blobs/"):])
				f.mu.Unlock()
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), f
}

// LayerDigests lists the digests of img's layers.
func LayerDigests(t testing.TB, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	return ds
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
	return pushIndex(t, ref, imgs, false)
}

// PushAttestedIndex is PushIndex with a build attestation beside each image,
// as `docker buildx build --push` adds by default (little-vm-helper's
// images have them): a manifest of platform unknown/unknown annotated
// vnd.docker.reference.type=attestation-manifest.
func PushAttestedIndex(t testing.TB, ref string, imgs map[kernels.Arch]v1.Image) string {
	t.Helper()
	return pushIndex(t, ref, imgs, true)
}

func pushIndex(t testing.TB, ref string, imgs map[kernels.Arch]v1.Image, attest bool) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range kernels.Arches {
		img, ok := imgs[arch]
		if !ok {
			continue
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch.GOARCH()},
		}})
		if !attest {
			continue
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{"name":"` + ref + `","digest":{"sha256":"` + d.Hex + `"}}],"predicate":{"buildType":"https://mobyproject.org/buildkit@v1"}}`)
		att, err := mutate.AppendLayers(empty.Image, static.NewLayer(statement, "application/vnd.in-toto+json"))
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: mutate.MediaType(att, types.OCIManifestSchema1), Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.String()},
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
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
