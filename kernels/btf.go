package kernels

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/ulikunitz/xz"

	"github.com/vmrunner/vmrunner/internal/inputfile"
	"github.com/vmrunner/vmrunner/internal/text"
)

// External BTF: a kernel built without CONFIG_DEBUG_INFO_BTF (vanilla 4.18,
// Ubuntu 20.04's 5.8 HWE) has no /sys/kernel/btf/vmlinux, and CO-RE
// programs need its types from somewhere else. btfhub-archive generates
// them from the kernels' DWARF with pahole and ships them as
// <distro>/<ver>/<x86_64|arm64>/<uname -r>.btf.tar.xz; little-vm-helper's
// images carry boot/btf-<release> (pahole --btf_encode_detached). A source
// may name such a file (Spec.BTF); the guest then uses it in place of the
// kernel's own BTF, for the btf check and as the KernelTypes of the CO-RE
// programs it loads. A file a source ships itself (lvh's) is used only
// when the kernel has no BTF of its own.

// BTFSpec is the `btf:` of a source in matrix.yaml: the kernel's BTF as a
// separate file, raw (.btf) or a tar.xz holding one (.btf.tar.xz, as
// btfhub ships it).
type BTFSpec struct {
	// File is a local file, relative to the matrix file.
	File string `yaml:"file" json:"file,omitempty"`
	// URL and SHA256 download one; the checksum is required.
	URL    string `yaml:"url" json:"url,omitempty"`
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
}

// Validate checks a BTFSpec without touching the disk or the network.
func (s BTFSpec) Validate() error {
	switch {
	case s.File != "" && s.URL != "":
		return errors.New("btf: give file or url, not both")
	case s.File == "" && s.URL == "":
		return errors.New("btf: give file (a .btf or .btf.tar.xz relative to the matrix) or url and sha256")
	case s.URL != "" && !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://"):
		return fmt.Errorf("btf: url %q: expected http:// or https://", s.URL)
	case s.URL != "" && !text.IsSHA256Hex(strings.ToLower(s.SHA256)):
		return fmt.Errorf("btf: sha256 of %s: expected 64 hex digits, got %q", s.URL, s.SHA256)
	}
	return nil
}

// where names the file for messages and records.
func (s BTFSpec) where() string {
	if s.URL != "" {
		return s.URL
	}
	return s.File
}

// Bounds of an external BTF: a kernel's is 3–10 MB, its tar.xz 1–3 MB.
const (
	maxBTFFile = 256 << 20
	maxBTF     = 256 << 20
)

// resolveBTF fetches or reads the external BTF of spec, unpacks it when it
// is a tar.xz, checks that it parses as BTF and stores it in the cache as
// btf/<sha256 of the raw BTF>. It returns that path.
func resolveBTF(ctx context.Context, spec BTFSpec, opts Options) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	var data []byte
	switch {
	case spec.URL != "":
		f := &fetcher{client: opts.Client, log: opts.Logger, fix: "download the file and give it as btf: {file: …}"}
		blob, err := opts.Cache.fetchBlob(ctx, f, spec.URL, strings.ToLower(spec.SHA256))
		if err != nil {
			return "", fmt.Errorf("btf: %w", err)
		}
		if data, err = inputfile.ReadFile(ctx, blob, maxBTFFile); err != nil {
			return "", fmt.Errorf("btf: %w", err)
		}
	default:
		var err error
		if data, err = inputfile.ReadFile(ctx, spec.File, maxBTFFile); err != nil {
			return "", inputError("btf.file", err)
		}
	}
	raw, err := unpackBTF(data, spec.where())
	if err != nil {
		return "", err
	}
	if _, err := btf.LoadSpecFromReader(bytes.NewReader(raw)); err != nil {
		return "", fmt.Errorf("%w: btf: %s is not BTF: %v", ErrBadInput, spec.where(), err)
	}
	sum := sha256.Sum256(raw)
	dst := filepath.Join(opts.Cache.Dir, "btf", hex.EncodeToString(sum[:]))
	if got, err := fileutil.FileSHA256(dst); err == nil && got == hex.EncodeToString(sum[:]) {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("btf: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(tempPrefix(dst))+"*")
	if err != nil {
		return "", fmt.Errorf("btf: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return "", fmt.Errorf("btf: %w", err)
	}
	return dst, nil
}

// unpackBTF returns the raw BTF of data: data itself, or the one .btf file
// of an xz-compressed tar.
func unpackBTF(data []byte, where string) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte("\xfd7zXZ\x00")) {
		return data, nil
	}
	zr, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: btf: %s: %v", ErrBadInput, where, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: btf: %s holds no .btf file", ErrBadInput, where)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: btf: %s: %v", ErrBadInput, where, err)
		}
		if hdr.Typeflag != tar.TypeReg || path.Ext(hdr.Name) != ".btf" {
			continue
		}
		var b bytes.Buffer
		n, err := io.Copy(&b, io.LimitReader(tr, maxBTF+1))
		if err != nil {
			return nil, fmt.Errorf("%w: btf: %s: %v", ErrBadInput, where, err)
		}
		if n > maxBTF {
			return nil, fmt.Errorf("%w: btf: %s: %s is larger than %s", ErrBadInput, where, hdr.Name, inputfile.Size(maxBTF))
		}
		return b.Bytes(), nil
	}
}
