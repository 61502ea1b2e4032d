package kernels_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

func TestResolveBuildErrors(t *testing.T) {
	ctx := context.Background()
	notTree := t.TempDir()
	os.WriteFile(filepath.Join(notTree, "Makefile"), []byte("all:\n"), 0o644)
	for _, tc := range []struct {
		name string
		spec kernels.BuildSpec
		want error
		msg  string
	}{
		{"not a kernel tree", kernels.BuildSpec{Tree: notTree}, kernels.ErrBadInput, "is not a Linux source tree (no Kconfig)"},
		{"wrong arch", kernels.BuildSpec{Tree: notTree, Arch: "arm64"}, kernels.ErrBadInput, "build.arch is arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCache(t)
			_, err := kernels.Resolve(ctx, "b", kernels.Spec{Build: &tc.spec}, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if got := entries(t, c); len(got) != 0 {
				t.Errorf("cache holds %v", got)
			}
		})
	}
}

// LinuxSource finds (and unpacks once) the tree of Debian's linux-source
// package, for the opt-in build tests.
func linuxSource(t *testing.T) string {
	matches, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(matches) == 0 {
		t.Skip("no /usr/src/linux-source-*.tar.xz: apt-get install linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev")
	}
	dir := filepath.Join(os.TempDir(), "vmrunner-linux-source")
	tree := filepath.Join(dir, strings.TrimSuffix(filepath.Base(matches[0]), ".tar.xz"))
	if _, err := os.Stat(filepath.Join(tree, "Kconfig")); err != nil {
		os.MkdirAll(dir, 0o755)
		if out, err := exec.Command("tar", "-C", dir, "-xf", matches[0]).CombinedOutput(); err != nil {
			t.Fatalf("unpack %s: %v\n%s", matches[0], err, out)
		}
	}
	return tree
}

// TestResolveBuildConfig runs defconfig and olddefconfig on a real tree:
// an option whose dependency is off does not stick. Opt-in: it needs the
// linux-source package (the build and boot are in cmd/vmrunner's
// TestBuildSource).
func TestResolveBuildConfig(t *testing.T) {
	if os.Getenv("VMRUNNER_SLOW_TESTS") == "" {
		t.Skip("set VMRUNNER_SLOW_TESTS=1 to configure a real kernel tree")
	}
	tree := linuxSource(t)
	c := testCache(t)
	bad := filepath.Join(t.TempDir(), "bad.config")
	if err := os.WriteFile(bad, []byte("# CONFIG_BPF_SYSCALL is not set\nCONFIG_BPF_LSM=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := kernels.Spec{Build: &kernels.BuildSpec{Tree: tree, Config: []string{"virtio", bad}}}
	_, err := kernels.Resolve(context.Background(), "b", spec, kernels.X86_64, kernels.Options{Cache: c, Logger: quiet()})
	if !errors.Is(err, kernels.ErrBadInput) || !strings.Contains(err.Error(), "CONFIG_BPF_LSM=y (got n)") {
		t.Fatalf("err = %v, want CONFIG_BPF_LSM=y did not stick", err)
	}
	if es, _ := os.ReadDir(filepath.Join(c.Dir, "kernels")); len(es) != 0 {
		t.Errorf("cache holds %d kernels after a failure", len(es))
	}
}
