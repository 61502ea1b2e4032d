package agentbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The Makefile's guest-tools target and a first-use build put the same
// commands in vmrunner-tools-<arch>/.
func TestShellToolsMatchMakefile(t *testing.T) {
	root, err := checkout()
	if err != nil {
		t.Fatalf("find the checkout: %v", err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GUEST_TOOLS := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no GUEST_TOOLS line")
	}
	if got := strings.Fields(string(m[1])); !slices.Equal(got, ShellTools) {
		t.Errorf("Makefile GUEST_TOOLS = %v, agentbuild.ShellTools = %v", got, ShellTools)
	}
}

func TestEnsureWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Ensure(context.Background(), t.TempDir(), "x86_64", os.Stderr)
	if !errors.Is(err, ErrNoGo) {
		t.Fatalf("Ensure without go on PATH = %v, want ErrNoGo", err)
	}
	const want = "no go command on PATH to build the guest agents: install Go (https://go.dev/dl/) and run vmrunner again, " +
		"or build them in a clone with `make build` and pass --agent-dir"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

// A test binary is a "(devel)" build of this checkout: it builds from here,
// keyed by its own hash.
func TestFindSourceDevel(t *testing.T) {
	src, err := FindSource(context.Background(), "go")
	if err != nil {
		t.Fatalf("FindSource: %v", err)
	}
	root, _ := checkout()
	if src.Dir != root || src.Version != "(devel)" || !regexp.MustCompile(`^devel-[0-9a-f]{16}$`).MatchString(src.Key) {
		t.Errorf("FindSource = %+v, want Dir %s, Version (devel), Key devel-<hash>", src, root)
	}
}

// A directory another process completed is used as it is, with no go call.
func TestBuildUsesReadyDir(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "agents", "v1.2.3", "arm64")
	for _, p := range outputs(dir, "arm64") {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var progress strings.Builder
	got, err := Build(context.Background(), "/nonexistent/go", Source{Version: "v1.2.3", Key: "v1.2.3"}, cache, "arm64", &progress)
	if err != nil || got != dir || progress.Len() != 0 {
		t.Errorf("Build = %q, %v, progress %q; want %q, nil, none", got, err, progress.String(), dir)
	}
}
