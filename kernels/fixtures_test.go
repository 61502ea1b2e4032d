package kernels

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Synthetic kernels and a fake Debian mirror, built in memory.

// elfNote encodes one ELF note.
func elfNote(name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	n := append([]byte(name), 0)
	binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(n)), uint32(len(desc)), typ})
	b.Write(n)
	b.Write(make([]byte, (4-len(n)%4)%4))
	b.Write(desc)
	b.Write(make([]byte, (4-len(desc)%4)%4))
	return b.Bytes()
}

// tinyELF is a 64-bit little-endian ELF executable with one PT_NOTE segment
// holding notes, and some padding standing in for the kernel text.
func tinyELF(machine elf.Machine, notes ...[]byte) []byte {
	const ehsize, phsize = 64, 56
	body := bytes.Join(notes, nil)
	var b bytes.Buffer
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	b.Write(ident[:])
	le := binary.LittleEndian
	binary.Write(&b, le, struct {
		Type, Machine              uint16
		Version                    uint32
		Entry, Phoff, Shoff        uint64
		Flags                      uint32
		Ehsize, Phentsize, Phnum   uint16
		Shentsize, Shnum, Shstrndx uint16
	}{uint16(elf.ET_EXEC), uint16(machine), 1, 0x1000000, ehsize, 0, 0, ehsize, phsize, 1, 64, 0, 0})
	binary.Write(&b, le, elf.Prog64{Type: uint32(elf.PT_NOTE), Flags: 4, Off: ehsize + phsize,
		Filesz: uint64(len(body)), Memsz: uint64(len(body)), Align: 4})
	b.Write(body)
	b.Write(bytes.Repeat([]byte("kernel text "), 1000))
	return b.Bytes()
}

var (
	pvhNote   = elfNote("Xen", xenElfnotePhys32Entry, []byte{0, 0, 0, 1})
	linuxNote = elfNote("Linux", 6, []byte("salt"))
)

// compress compresses data the way the kernel build does for a bzImage
// payload: every format but gzip gets the size appended.
func compressPayload(t testing.TB, format string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch format {
	case formatGzip:
		w = gzip.NewWriter(&b)
	case formatXZ:
		w, err = xz.NewWriter(&b)
	case formatLZMA:
		w, err = lzma.NewWriter(&b)
	case formatZstd:
		w, err = zstd.NewWriter(&b)
	case formatLZ4:
		lw := lz4.NewWriter(&b)
		err = lw.Apply(lz4.LegacyOption(true))
		w = lw
	default:
		t.Fatalf("no writer for %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if format != formatGzip {
		binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	}
	return b.Bytes()
}

// bzImageOf wraps a compressed payload in a minimal bzImage: one setup
// sector after the boot sector, a kernel_version string, the payload at
// offset 0x40 of the protected-mode part.
func bzImageOf(payload []byte, version string, kernel64 bool) []byte {
	const setupSects, payloadOff = 1, 0x40
	img := make([]byte, (setupSects+1)*512+payloadOff+len(payload))
	le := binary.LittleEndian
	img[offSetupSects] = setupSects
	le.PutUint16(img[offBootFlag:], 0xaa55)
	copy(img[offHeaderMagic:], "HdrS")
	le.PutUint16(img[offVersion:], 0x020f)
	le.PutUint16(img[offKernelVersion:], 0x300-0x200)
	copy(img[0x300:], version+"\x00")
	if kernel64 {
		le.PutUint16(img[offXLoadFlags:], xlfKernel64)
	}
	le.PutUint32(img[offPayloadOffset:], payloadOff)
	le.PutUint32(img[offPayloadLength:], uint32(len(payload)))
	copy(img[(setupSects+1)*512+payloadOff:], payload)
	return img
}

// arm64Image is a minimal arm64 Image header followed by filler.
func arm64Image() []byte {
	img := make([]byte, 8192)
	copy(img[0x38:], arm64ImageMagic)
	return img
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// tarFile is one member of a synthetic data.tar.
type tarFile struct {
	Name string
	Data []byte
	Link string // symlink target
}

// buildTar writes a tar, with the directories a dpkg-built tar has.
func buildTar(t testing.TB, files []tarFile) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.Name); d != "." && d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	for d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		h := &tar.Header{Name: "./" + f.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.Data))}
		if f.Link != "" {
			h = &tar.Header{Name: "./" + f.Name, Typeflag: tar.TypeSymlink, Linkname: f.Link}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.Data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// buildDeb writes a .deb: an ar archive of debian-binary, control.tar.gz
// and data.tar.<dataExt> (gz or xz).
func buildDeb(t testing.TB, pkg, version, arch, dataExt string, files []tarFile) []byte {
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nDescription: test kernel\n", pkg, version, arch)
	controlTar := gzipped(buildTar(t, []tarFile{{Name: "control", Data: []byte(control)}}))
	data := buildTar(t, files)
	switch dataExt {
	case "gz":
		data = gzipped(data)
	case "xz":
		var b bytes.Buffer
		w, _ := xz.NewWriter(&b)
		w.Write(data)
		w.Close()
		data = b.Bytes()
	}
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", controlTar}, {"data.tar." + dataExt, data}} {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 1700000000, 0, 0, "100644", len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// kernelFiles is the content of a kernel package for release.
func kernelFiles(release string, vmlinuz []byte, modulesDir string) []tarFile {
	if modulesDir == "" {
		modulesDir = "lib/modules"
	}
	m := modulesDir + "/" + release
	return []tarFile{
		{Name: "boot/vmlinuz-" + release, Data: vmlinuz},
		{Name: "boot/config-" + release, Data: []byte("CONFIG_PVH=y\nCONFIG_DEBUG_INFO_BTF=y\n")},
		{Name: "boot/System.map-" + release, Data: []byte("ffffffff81000000 T _text\n")},
		{Name: m + "/kernel/drivers/virtio/virtio_mmio.ko", Data: []byte("\x7fELF module")},
		{Name: m + "/kernel/drivers/char/virtio_console.ko.xz", Data: []byte("\xfd7zXZ\x00 module")},
		{Name: m + "/modules.dep", Data: []byte("kernel/drivers/char/virtio_console.ko.xz: kernel/drivers/virtio/virtio_mmio.ko\n")},
		{Name: m + "/build", Link: "/usr/src/linux-headers-" + release},
		{Name: "usr/share/doc/linux-image/changelog.gz", Data: gzipped([]byte("changes"))},
	}
}

// mirror is an httptest server laid out like a Debian archive.
type mirror struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	requests map[string]int
	truncate map[string]bool // serve half the body, then cut the connection
}

func newMirror(t testing.TB) *mirror {
	m := &mirror{files: map[string][]byte{}, requests: map[string]int{}, truncate: map[string]bool{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.requests[r.URL.Path]++
		data, ok := m.files[r.URL.Path]
		cut := m.truncate[r.URL.Path]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if cut {
			w.Write(data[:len(data)/2])
			panic(http.ErrAbortHandler)
		}
		w.Write(data)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) put(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = data
}

// total counts the requests served so far.
func (m *mirror) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.requests {
		n += c
	}
	return n
}

// pkg is a package the test mirror serves.
type pkg struct {
	Name, Version, Arch string
	Deb                 []byte
	BadSHA              bool // the index lists a wrong SHA256
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// publish puts the packages into suite and writes its Packages.gz and an
// InRelease signed by signers (none: unsigned).
func (m *mirror) publish(t testing.TB, suite string, pkgs []pkg, signers ...*openpgp.Entity) {
	t.Helper()
	indexes := map[string]*bytes.Buffer{}
	for _, p := range pkgs {
		file := fmt.Sprintf("pool/main/l/linux/%s_%s_%s.deb", p.Name, p.Version, p.Arch)
		m.put("/debian/"+file, p.Deb)
		sum := sha256Hex(p.Deb)
		if p.BadSHA {
			sum = sha256Hex([]byte("something else"))
		}
		if indexes[p.Arch] == nil {
			// Unrelated packages first, as in a real index.
			indexes[p.Arch] = bytes.NewBufferString("Package: 0ad\nVersion: 0.0.26-3\nArchitecture: " + p.Arch +
				"\nDescription: game\n long description\nFilename: pool/main/0/0ad/0ad.deb\nSize: 10\nSHA256: " + sha256Hex(nil) + "\n\n")
		}
		fmt.Fprintf(indexes[p.Arch], "Package: %s\nSource: linux (%s)\nVersion: %s\nInstalled-Size: 400000\nArchitecture: %s\n"+
			"Description: Linux for testing\nFilename: %s\nSize: %d\nSHA256: %s\n\n",
			p.Name, p.Version, p.Version, p.Arch, file, len(p.Deb), sum)
	}
	var rel strings.Builder
	fmt.Fprintf(&rel, "Origin: Debian\nSuite: %s\nCodename: %s\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n", suite, suite)
	for arch, idx := range indexes {
		gz := gzipped(idx.Bytes())
		path := "main/binary-" + arch + "/Packages.gz"
		m.put("/debian/dists/"+suite+"/"+path, gz)
		fmt.Fprintf(&rel, " %s %d %s\n", sha256Hex(idx.Bytes()), idx.Len(), "main/binary-"+arch+"/Packages")
		fmt.Fprintf(&rel, " %s %d %s\n", sha256Hex(gz), len(gz), path)
	}
	m.put("/debian/dists/"+suite+"/InRelease", signRelease(t, rel.String(), signers...))
}

// signRelease clearsigns text with every signer, as Debian does with its
// several archive keys.
func signRelease(t testing.TB, text string, signers ...*openpgp.Entity) []byte {
	t.Helper()
	if len(signers) == 0 {
		return []byte(text)
	}
	var keys []*packet.PrivateKey
	for _, s := range signers {
		keys = append(keys, s.PrivateKey)
	}
	var b bytes.Buffer
	w, err := clearsign.EncodeMulti(&b, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	testKeysOnce sync.Once
	testKeys     [2]*openpgp.Entity
)

// testKey returns one of two generated signing keys (generated once: RSA
// generation is slow).
func testKey(t testing.TB, i int) *openpgp.Entity {
	testKeysOnce.Do(func() {
		for j := range testKeys {
			e, err := openpgp.NewEntity(fmt.Sprintf("Test Archive Key %d", j), "", "archive@example.org",
				&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
			if err != nil {
				panic(err)
			}
			testKeys[j] = e
		}
	})
	return testKeys[i]
}

// writeKeyring stores the public keys of entities as a binary keyring, the
// format of /usr/share/keyrings.
func writeKeyring(t testing.TB, entities ...*openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entities {
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
