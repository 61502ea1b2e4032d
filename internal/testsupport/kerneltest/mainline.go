package kerneltest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/vmrunner/vmrunner/kernels"
)

// Mainline is an HTTP server laid out like kernel.ubuntu.com/mainline,
// as the site's pages, Ubuntu's issue trackers and the tools that read it
// (pimlie/ubuntu-mainline-kernel.sh, bkw777/mainline) show it:
//
//	<root>/                       Apache index of v<version>/ folders
//	<root>/<version>/             per arch: a page whose header says
//	                              "Test amd64/build succeeded (rc=0, …)" and links
//	                              amd64/linux-…deb; folders amd64/, arm64/
//	<root>/<version>/<arch>/      the arch's debs, CHECKSUMS (Sha1 and Sha256
//	                              sections), CHECKSUMS.gpg, log, status
//
// or, flat (v4.18 and the builds before v5.6.18 / v5.7.2), every arch's debs
// directly in <version>/ with one CHECKSUMS, COMMIT, BUILD.LOG.<arch> and the
// packaging patches. The debs hold real Debian kernels.
type Mainline struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	builds   map[string]*MainlineBuild
	Truncate map[string]bool // serve half of these paths, then cut the connection
}

// MainlineLayout is how a version directory is laid out.
type MainlineLayout int

// The two layouts of kernel.ubuntu.com/mainline.
const (
	PerArch MainlineLayout = iota // <version>/<arch>/, from v5.6.18 and v5.7.2 on
	Flat                          // everything in <version>/, as v4.18
)

// MainlineStamp is one build in a folder: Ubuntu rebuilds a version
// sometimes, and the folder then holds the debs of both builds.
type MainlineStamp struct {
	ID        string // YYYYMMDDhhmm
	Unlisted  bool   // its debs are served but CHECKSUMS does not list them
	NoModules bool   // only its image deb was published
}

// MainlineBuild is one version directory.
type MainlineBuild struct {
	Version string // v6.12, v4.18, v5.15.120
	Layout  MainlineLayout
	Kernels []*kernels.Kernel // one per arch whose build succeeded
	Failed  []kernels.Arch    // arches whose build failed: named on the page, no debs
	Stamps  []MainlineStamp   // oldest first; default one stamp
	Signer  *openpgp.Entity   // signs CHECKSUMS; default MainlineKey()
}

// MainlineDeb is a deb the server publishes.
type MainlineDeb struct {
	Arch   kernels.Arch
	Stamp  string
	Kind   string // "image" or "modules"
	URL    string
	SHA256 string
}

// DefaultStamp is the build stamp of Publish.
const DefaultStamp = "202401010000"

// NewMainline starts an empty mainline server; its root is URL+"/mainline".
func NewMainline(t testing.TB) *Mainline {
	m := &Mainline{files: map[string][]byte{}, builds: map[string]*MainlineBuild{}, Truncate: map[string]bool{}}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	return m
}

// Root is the base URL to give as ubuntu-mainline's url.
func (m *Mainline) Root() string { return m.URL + "/mainline" }

func (m *Mainline) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	data, ok := m.files[r.URL.Path]
	trunc := m.Truncate[r.URL.Path]
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if trunc {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data[:len(data)/2])
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	_, _ = w.Write(data)
}

// Put serves data at path (below the server root).
func (m *Mainline) Put(p string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[p] = data
}

// Get returns what the server serves at path.
func (m *Mainline) Get(p string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[p]
}

// Delete stops serving path: it answers 404.
func (m *Mainline) Delete(p string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, p)
}

// Publish lays out k as the only build of its arch in version, per arch,
// with one build stamp, beside what version already holds for other
// arches. It returns the URLs of the image and modules debs and their
// SHA-256s.
func (m *Mainline) Publish(t testing.TB, version string, k *kernels.Kernel) (urls, shas []string) {
	t.Helper()
	b := m.builds[version]
	if b == nil {
		b = &MainlineBuild{Version: version}
	}
	b.Kernels = append(slices.DeleteFunc(b.Kernels, func(o *kernels.Kernel) bool { return o.Arch == k.Arch }), k)
	for _, d := range m.PublishBuild(t, *b) {
		if d.Arch == k.Arch {
			urls, shas = append(urls, d.URL), append(shas, d.SHA256)
		}
	}
	return urls, shas
}

var mainlineVersion = regexp.MustCompile(`^v([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(-rc[0-9]+)?$`)

// mainlineABI is the package ABI of a version: v6.12 → 6.12.0-061200,
// v5.15.120 → 5.15.120-0515120, v6.5-rc3 → 6.5.0-060500rc3.
func mainlineABI(t testing.TB, version string) string {
	v := mainlineVersion.FindStringSubmatch(version)
	if v == nil {
		t.Fatalf("mainline version %q", version)
	}
	n := func(s string) int { i, _ := strconv.Atoi(s); return i }
	return fmt.Sprintf("%d.%d.%d-%02d%02d%02d%s", n(v[1]), n(v[2]), n(v[3]), n(v[1]), n(v[2]), n(v[3]), strings.TrimPrefix(v[4], "-"))
}

// PublishBuild lays out a version directory (replacing what it held) and
// returns every kernel deb it serves.
func (m *Mainline) PublishBuild(t testing.TB, b MainlineBuild) []MainlineDeb {
	t.Helper()
	if len(b.Stamps) == 0 {
		b.Stamps = []MainlineStamp{{ID: DefaultStamp}}
	}
	if b.Signer == nil {
		b.Signer = MainlineKey(t)
	}
	stored := b
	m.builds[b.Version] = &stored
	m.mu.Lock()
	for p := range m.files {
		if strings.HasPrefix(p, "/mainline/"+b.Version+"/") {
			delete(m.files, p)
		}
	}
	m.mu.Unlock()

	abi, verDir := mainlineABI(t, b.Version), "/mainline/"+b.Version+"/"
	folders := map[string]*mainlineFolder{}
	var header bytes.Buffer
	var published []MainlineDeb
	arches := slices.Clone(kernels.Arches)
	for _, arch := range arches {
		dir := verDir
		if b.Layout == PerArch {
			dir = verDir + arch.Debian() + "/"
		}
		i := slices.IndexFunc(b.Kernels, func(k *kernels.Kernel) bool { return k.Arch == arch })
		if i < 0 && !slices.Contains(b.Failed, arch) {
			continue
		}
		if folders[dir] == nil {
			folders[dir] = &mainlineFolder{}
		}
		published = append(published, m.publishArch(t, b, arch, i, abi, verDir, dir, folders[dir], &header)...)
	}
	if b.Layout == Flat {
		if folders[verDir] == nil {
			folders[verDir] = &mainlineFolder{}
		}
		f := folders[verDir]
		for _, p := range []string{"0001-base-packaging.patch", "0002-UBUNTU-SAUCE-add-vmlinux.strip-to-BOOT_TARGETS1-on-p.patch", "COMMIT"} {
			m.Put(verDir+p, []byte(p+"\n"))
			f.files = append(f.files, p)
			f.sums = append(f.sums, p)
		}
	}
	for dir, f := range folders {
		m.publishSums(t, b, dir, f)
		if dir != verDir {
			m.Put(dir, apacheIndex(dir, "", f.files))
		}
	}
	var top []string
	if b.Layout == PerArch {
		for _, arch := range arches {
			if folders[verDir+arch.Debian()+"/"] != nil {
				top = append(top, arch.Debian()+"/")
			}
		}
	} else {
		top = folders[verDir].files
	}
	top = append(top, "HEADER.html")
	head := "<html><body><p>These binary packages represent builds of the mainline or stable Linux kernel tree.</p>\n<pre>\n" + header.String() + "</pre></body></html>\n"
	m.Put(verDir+"HEADER.html", []byte(head))
	m.Put(verDir, apacheIndex(verDir, head, top))

	// The root lists every version.
	versions := make([]string, 0, len(m.builds))
	for v := range m.builds {
		versions = append(versions, v+"/")
	}
	slices.Sort(versions)
	m.Put("/mainline/", apacheIndex("/mainline/", "", versions))
	return published
}

// mainlineFolder is what a folder of a version directory lists.
type mainlineFolder struct {
	files []string // names in listing order
	sums  []string // names CHECKSUMS lists
}

// publishArch puts arch's build of b in dir (f): its log and status, and
// unless its build failed, the debs of kernel i (of ABI abi) for every stamp; it adds
// arch's lines to header and returns the kernel debs.
func (m *Mainline) publishArch(t testing.TB, b MainlineBuild, arch kernels.Arch, i int, abi, verDir, dir string, f *mainlineFolder, header *bytes.Buffer) []MainlineDeb {
	debArch := arch.Debian()
	linkPrefix := strings.TrimPrefix(dir, verDir) // "" or "amd64/"
	failed := slices.Contains(b.Failed, arch)
	switch {
	case b.Layout == PerArch && failed:
		fmt.Fprintf(header, "Test %s/build failed (rc=2, on=%s, time=0:21:03, log=%slog)\n<br>\n", debArch, debArch, linkPrefix)
	case b.Layout == PerArch:
		fmt.Fprintf(header, "Test %s/build succeeded (rc=0, on=%s, time=0:11:17, log=%slog)\n", debArch, debArch, linkPrefix)
	case failed:
		fmt.Fprintf(header, "Build for %s failed (see <a href=\"BUILD.LOG.%s\">BUILD.LOG.%s</a>):\n<br>\n", debArch, debArch, debArch)
	default:
		fmt.Fprintf(header, "Build for %s succeeded (see <a href=\"BUILD.LOG.%s\">BUILD.LOG.%s</a>):\n", debArch, debArch, debArch)
	}
	if b.Layout == PerArch {
		m.Put(dir+"log", []byte("build log of "+b.Version+" "+debArch+"\n"))
		m.Put(dir+"status", []byte(map[bool]string{true: "2\n", false: "0\n"}[failed]))
		f.files = append(f.files, "log", "status")
	} else {
		name := "BUILD.LOG." + debArch
		m.Put(dir+name, []byte("build log\n"))
		f.files = append(f.files, name)
	}
	if failed {
		return nil
	}
	k := b.Kernels[i]
	var published []MainlineDeb
	for _, s := range b.Stamps {
		ver := abi + "." + s.ID
		debs := []struct{ pkg, kind string }{
			{"linux-headers-" + abi + "-generic", "headers"},
			{"linux-image-unsigned-" + abi + "-generic", "image"},
			{"linux-modules-" + abi + "-generic", "modules"},
		}
		for _, d := range debs {
			if d.kind == "modules" && s.NoModules {
				continue
			}
			file := fmt.Sprintf("%s_%s_%s.deb", d.pkg, ver, debArch)
			var data []byte
			switch d.kind {
			case "headers":
				data = Deb(t, d.pkg, ver, debArch, []File{{Name: "usr/src/linux-headers-" + abi + "-generic/Makefile", Data: []byte("# headers\n")}})
			case "image":
				data = Deb(t, d.pkg, ver, debArch, Files(t, k, ImageDeb))
			case "modules":
				data = Deb(t, d.pkg, ver, debArch, Files(t, k, ModulesDeb))
			}
			m.Put(dir+file, data)
			f.files = append(f.files, file)
			if !s.Unlisted {
				f.sums = append(f.sums, file)
			}
			fmt.Fprintf(header, "  <a href=\"%s%s\">%s%s</a>\n", linkPrefix, file, linkPrefix, file)
			if d.kind != "headers" {
				published = append(published, MainlineDeb{Arch: arch, Stamp: s.ID, Kind: d.kind, URL: m.URL + dir + file, SHA256: SHA256(data)})
			}
		}
	}
	header.WriteString("<br>\n")
	return published
}

// publishSums puts the folder's CHECKSUMS (SHA-1 and SHA-256 of what f
// lists for it) and its signature by b.Signer in dir.
func (m *Mainline) publishSums(t testing.TB, b MainlineBuild, dir string, f *mainlineFolder) {
	var sha1s, sha256s bytes.Buffer
	for _, name := range f.sums {
		data := m.Get(dir + name)
		fmt.Fprintf(&sha1s, "%s  %s\n", sha1Hex(data), name)
		fmt.Fprintf(&sha256s, "%s  %s\n", SHA256(data), name)
	}
	sums := fmt.Sprintf("# Checksums for %s, check with the command below:\n#     shasum -c CHECKSUMS\n#\n# Checksums-Sha1:\n%s#\n# Checksums-Sha256:\n%s",
		b.Version, sha1s.String(), sha256s.String())
	m.Put(dir+"CHECKSUMS", []byte(sums))
	m.Put(dir+"CHECKSUMS.gpg", armoredSignature(t, b.Signer, []byte(sums)))
	f.files = append(f.files, "CHECKSUMS", "CHECKSUMS.gpg")
}

// apacheIndex renders a directory listing as Apache's mod_autoindex does,
// with the folder's HEADER.html above the table.
func apacheIndex(dir, header string, names []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n  <title>Index of %s</title>\n </head>\n <body>\n<h1>Index of %s</h1>\n%s", strings.TrimSuffix(dir, "/"), strings.TrimSuffix(dir, "/"), header)
	b.WriteString("  <table>\n   <tr><th valign=\"top\"><img src=\"/icons/blank.gif\" alt=\"[ICO]\"></th><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th><th><a href=\"?C=S;O=A\">Size</a></th></tr>\n")
	fmt.Fprintf(&b, "<tr><td valign=\"top\"><img src=\"/icons/back.gif\" alt=\"[PARENTDIR]\"></td><td><a href=\"%s\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td></tr>\n", path.Dir(strings.TrimSuffix(dir, "/"))+"/")
	for _, n := range names {
		icon := "[   ]"
		if strings.HasSuffix(n, "/") {
			icon = "[DIR]"
		}
		fmt.Fprintf(&b, "<tr><td valign=\"top\"><img src=\"/icons/unknown.gif\" alt=\"%s\"></td><td><a href=\"%s\">%s</a></td><td align=\"right\">2024-01-01 00:00  </td><td align=\"right\">  - </td></tr>\n", icon, n, n)
	}
	b.WriteString("</table>\n</body></html>\n")
	return b.Bytes()
}

var (
	mainlineKeyOnce sync.Once
	mainlineKey     *openpgp.Entity
	otherKeyOnce    sync.Once
	otherKey        *openpgp.Entity
)

func newKey(name string) *openpgp.Entity {
	e, err := openpgp.NewEntity(name, "", "kernel-ppa@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		panic(err)
	}
	return e
}

// MainlineKey is the key the fixture signs CHECKSUMS with, standing in for
// the Kernel PPA key.
func MainlineKey(testing.TB) *openpgp.Entity {
	mainlineKeyOnce.Do(func() { mainlineKey = newKey("Test Kernel PPA") })
	return mainlineKey
}

// OtherKey is a key that signs nothing the fixtures serve.
func OtherKey(testing.TB) *openpgp.Entity {
	otherKeyOnce.Do(func() { otherKey = newKey("Somebody Else") })
	return otherKey
}

// Keyring writes the public keys of entities as a binary keyring file.
func Keyring(t testing.TB, dir string, entities ...*openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entities {
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	p := path.Join(dir, "keyring.gpg")
	writeFile(t, p, b.Bytes())
	return p
}

// armoredSignature is a detached, armored signature of data, as
// `gpg --armor --detach-sign` writes CHECKSUMS.gpg.
func armoredSignature(t testing.TB, signer *openpgp.Entity, data []byte) []byte {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, signer, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
