package kernels_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/vmrunner/vmrunner/internal/testsupport/kerneltest"
	"github.com/vmrunner/vmrunner/kernels"
)

// btfTarXZ packs raw BTF as btfhub-archive does: <uname -r>.btf in a tar.xz.
func btfTarXZ(t *testing.T, release string, raw []byte) []byte {
	var b bytes.Buffer
	zw, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: release + ".btf", Mode: 0o644, Size: int64(len(raw)), Typeflag: tar.TypeReg})
	tw.Write(raw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestExternalBTF(t *testing.T) {
	amd64 := kerneltest.Debian(t, kernels.X86_64)
	raw := kerneltest.BTF(t, amd64)
	dir := t.TempDir()
	plain := writeTemp(t, dir, amd64.Release+".btf", raw)
	packed := btfTarXZ(t, amd64.Release, raw)
	tarxz := writeTemp(t, dir, amd64.Release+".btf.tar.xz", packed)
	srv := kerneltest.NewMainline(t) // any HTTP server will do
	srv.Put("/btfhub/debian/"+amd64.Release+".btf.tar.xz", packed)
	url := srv.URL + "/btfhub/debian/" + amd64.Release + ".btf.tar.xz"
	file := kernels.Spec{File: &kernels.FileSpec{Kernel: amd64.Image, Modules: amd64.Modules, Config: amd64.Config}}
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		btf  kernels.BTFSpec
	}{
		{".btf", kernels.BTFSpec{File: plain}},
		{".btf.tar.xz", kernels.BTFSpec{File: tarxz}},
		{"url", kernels.BTFSpec{URL: url, SHA256: kerneltest.SHA256(packed)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := file
			spec.BTF = &tc.btf
			k, err := kernels.Resolve(ctx, "k", spec, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(k.BTF)
			if err != nil || !bytes.Equal(got, raw) || !k.BTFReplaces || k.BTFFrom != cmpOr(tc.btf.File, tc.btf.URL) {
				t.Errorf("kernel BTF %q from %q (replaces %v): %d bytes, %v; want the raw BTF", k.BTF, k.BTFFrom, k.BTFReplaces, len(got), err)
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		notBTF := writeTemp(t, dir, "x.btf", []byte("not BTF at all"))
		for _, tc := range []struct {
			name string
			btf  kernels.BTFSpec
			want error
			msg  string
		}{
			{"not BTF", kernels.BTFSpec{File: notBTF}, kernels.ErrBadInput, "x.btf is not BTF"},
			{"missing", kernels.BTFSpec{File: filepath.Join(dir, "nope.btf")}, kernels.ErrNotFound, "btf.file"},
			{"wrong sha256", kernels.BTFSpec{URL: url, SHA256: strings.Repeat("0", 64)}, kernels.ErrChecksum, "sha256"},
			{"no sha256", kernels.BTFSpec{URL: url}, kernels.ErrBadInput, "expected 64 hex digits"},
			{"empty", kernels.BTFSpec{File: writeTemp(t, dir, "e.btf", nil)}, kernels.ErrBadInput, "e.btf is not BTF"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				spec := file
				spec.BTF = &tc.btf
				_, err := kernels.Resolve(ctx, "k", spec, kernels.X86_64, kernels.Options{Cache: testCache(t), Logger: quiet()})
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("err = %v, want %v containing %q", err, tc.want, tc.msg)
				}
			})
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Kinds are Spec's keys but btf, which is an option of every kind.
func TestKinds(t *testing.T) {
	var keys []string
	st := reflect.TypeFor[kernels.Spec]()
	for i := range st.NumField() {
		if k, _, _ := strings.Cut(st.Field(i).Tag.Get("yaml"), ","); k != "btf" {
			keys = append(keys, k)
		}
	}
	if !slices.Equal(keys, kernels.Kinds()) {
		t.Errorf("Spec's kinds %v, Kinds() %v", keys, kernels.Kinds())
	}
}
