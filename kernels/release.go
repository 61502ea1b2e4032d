package kernels

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"pault.ag/go/debian/control"
)

// DefaultKeyring is Debian's archive keyring, from the debian-archive-keyring
// package.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// defaultKeyring is DefaultKeyring; tests point it elsewhere.
var defaultKeyring = DefaultKeyring

// release is the part of a suite's InRelease that Resolve uses.
type release struct {
	Suite    string
	Codename string
	SHA256   []control.SHA256FileHash `delim:"\n" strip:"\n\r\t "`
}

// file returns the SHA256 entry for path (main/binary-amd64/Packages.gz).
func (r *release) file(path string) (control.FileHash, bool) {
	for _, f := range r.SHA256 {
		if f.Filename == path {
			return f.FileHash, true
		}
	}
	return control.FileHash{}, false
}

// parseInRelease checks the clearsigned InRelease against keyring (nil: no
// check) and decodes the signed text. Only the signed text is decoded, so
// nothing outside the signature can influence the result.
func parseInRelease(data []byte, keyring openpgp.EntityList) (*release, error) {
	text := data
	block, _ := clearsign.Decode(data)
	switch {
	case block != nil && keyring != nil:
		if err := verifyClearsigned(block, keyring); err != nil {
			return nil, err
		}
		text = block.Plaintext
	case block != nil:
		text = block.Plaintext
	case keyring != nil:
		return nil, fmt.Errorf("verify InRelease: %w: not clearsigned", ErrSignature)
	}
	var r release
	if err := control.Unmarshal(&r, bytes.NewReader(text)); err != nil {
		return nil, fmt.Errorf("parse InRelease: %w", err)
	}
	if len(r.SHA256) == 0 {
		return nil, fmt.Errorf("parse InRelease: no SHA256 section")
	}
	return &r, nil
}

// verifyClearsigned accepts block if any one of its signatures verifies
// with a key of keyring. Debian signs InRelease with several keys (archive
// keys of the last releases, the release key); go-crypto only tries the
// first signature whose issuer it knows, which can be a key that has since
// expired, so every signature packet is tried on its own.
func verifyClearsigned(block *clearsign.Block, keyring openpgp.EntityList) error {
	packets := packet.NewOpaqueReader(block.ArmoredSignature.Body)
	var errs []error
	for {
		p, err := packets.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
		var one bytes.Buffer
		if err := p.Serialize(&one); err != nil {
			errs = append(errs, err)
			continue
		}
		_, _, err = openpgp.VerifyDetachedSignature(keyring, bytes.NewReader(block.Bytes), &one, nil)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no signatures"))
	}
	return fmt.Errorf("verify InRelease: %w: %v", ErrSignature, errors.Join(errs...))
}

var (
	keyrings            sync.Map // path → openpgp.EntityList
	warnNoKeyring       sync.Once
	warnNoUbuntuKeyring sync.Once
	errNoKeyringFile    = errors.New("no keyring")
)

// loadKeyring reads an OpenPGP keyring, binary or armored. path "" means
// DefaultKeyring when it exists; when it does not, loadKeyring warns once
// and returns nil: InRelease is then trusted as served.
func loadKeyring(path string, log *slog.Logger) (openpgp.EntityList, error) {
	return loadKeyringOr(path, defaultKeyring, &warnNoKeyring,
		"Debian archive keyring not found: InRelease signatures are not checked; fix with `apt-get install debian-archive-keyring` or set a keyring", log)
}

// loadKeyringOr is loadKeyring with another default keyring and warning.
func loadKeyringOr(path, def string, once *sync.Once, warning string, log *slog.Logger) (openpgp.EntityList, error) {
	explicit := path != ""
	if !explicit {
		path = def
	}
	if kr, ok := keyrings.Load(path); ok {
		return kr.(openpgp.EntityList), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			once.Do(func() { log.Warn(warning, "path", path) })
			return nil, nil
		}
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	kr, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil || len(kr) == 0 {
		kr, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	if len(kr) == 0 {
		return nil, fmt.Errorf("read keyring %s: %w", path, errNoKeyringFile)
	}
	keyrings.Store(path, kr)
	return kr, nil
}

// validSuite rejects suite names that would escape dists/.
func validSuite(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/\\ ") && s != "." && s != ".."
}
