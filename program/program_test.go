package program

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
)

// builds caches the fixtures built by build, by name, for the whole run.
var builds sync.Map

// build compiles a tiny Go program with env and returns its path.
func build(t *testing.T, name, src string, env ...string) string {
	t.Helper()
	if p, ok := builds.Load(name); ok {
		return p.(string)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not in PATH")
	}
	dir, err := os.MkdirTemp("", "program-fixture")
	if err != nil {
		t.Fatal(err)
	}
	fixtureDirs = append(fixtureDirs, dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fixture\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	builds.Store(name, out)
	return out
}

var fixtureDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range fixtureDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

const mainGo = "package main\nfunc main() { println(\"hi\") }\n"

const cgoGo = `package main

// #include <stdlib.h>
import "C"

func main() { C.abs(-1) }
`

func TestInspectStatic(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		arch   kernels.Arch
	}{{"amd64", kernels.X86_64}, {"arm64", kernels.ARM64}} {
		t.Run(tc.goarch, func(t *testing.T) {
			bin := build(t, "static-"+tc.goarch, mainGo, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tc.goarch)
			p, err := Inspect(bin, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Arch != tc.arch || !p.Static || len(p.Needs) != 0 || p.Path != bin {
				t.Errorf("Inspect = %+v, want a static %s program needing nothing", p, tc.arch)
			}
			if _, err := Inspect(bin, Options{Arch: tc.arch}); err != nil {
				t.Errorf("with the matching --arch: %v", err)
			}
		})
	}
}

func TestInspectArchMismatch(t *testing.T) {
	bin := build(t, "static-arm64", mainGo, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	_, err := Inspect(bin, Options{Arch: kernels.X86_64})
	if !errors.Is(err, ErrArchMismatch) {
		t.Fatalf("err = %v, want ErrArchMismatch", err)
	}
	for _, want := range []string{"it is arm64", "--arch x86_64", "GOARCH=amd64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestInspectDynamicHost(t *testing.T) {
	if kernels.Host() != kernels.X86_64 {
		t.Skip("the fixture is built with the host's gcc for x86_64")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not in PATH")
	}
	bin := build(t, "cgo", cgoGo, "CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64")
	p, err := Inspect(bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Static || p.Interp != "/lib64/ld-linux-x86-64.so.2" {
		t.Fatalf("Inspect = %+v, want dynamic with the x86_64 loader", p)
	}
	guests := map[string]string{}
	for _, f := range p.Needs {
		guests[f.Guest] = f.Host
		fi, err := os.Lstat(f.Host)
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: host file %s is not a regular file (%v)", f.Guest, f.Host, err)
		}
	}
	if p.Needs[0].Guest != p.Interp {
		t.Errorf("first need is %s, want the interpreter", p.Needs[0].Guest)
	}
	var libc bool
	for g := range guests {
		libc = libc || filepath.Base(g) == "libc.so.6"
	}
	if !libc {
		t.Errorf("closure %v has no libc.so.6", guests)
	}
}

func TestInspectForeignDynamic(t *testing.T) {
	bin := build(t, "pie-arm64", mainGo, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=-buildmode=pie")
	_, err := Inspect(bin, Options{Host: kernels.X86_64})
	if !errors.Is(err, ErrForeignDynamic) {
		t.Fatalf("err = %v, want ErrForeignDynamic", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "--sysroot", "/lib/ld-linux-aarch64.so.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// With a sysroot holding the loader (behind an absolute symlink, which
	// must resolve inside the sysroot), the program is packed.
	root := t.TempDir()
	real := filepath.Join(root, "usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin) // any aarch64 ELF stands in for the loader
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", filepath.Join(root, "usr/lib/ld-linux-aarch64.so.1")); err != nil {
		t.Fatal(err)
	}
	p, err := Inspect(bin, Options{Host: kernels.X86_64, Sysroot: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Needs) != 1 || p.Needs[0].Guest != "/lib/ld-linux-aarch64.so.1" || p.Needs[0].Host != real {
		t.Errorf("Needs = %+v, want the loader at %s from %s", p.Needs, "/lib/ld-linux-aarch64.so.1", real)
	}
}

func TestInspectBadInput(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		is   error
		want string
	}{
		{filepath.Join(dir, "missing"), nil, "no such file"},
		{script, ErrNotELF, "it is a script"},
		{text, ErrNotELF, "GOOS=linux"},
		{dir, ErrNotELF, "not a regular file"},
	} {
		_, err := Inspect(tc.path, Options{})
		if err == nil {
			t.Errorf("%s: no error", tc.path)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.path, err, tc.is)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Base(tc.path)) {
			t.Errorf("%s: error %q should name the file and say %q", tc.path, err, tc.want)
		}
	}
}

func TestLdSoConf(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ld.so.conf", "# comment\n/opt/a\ninclude conf.d/*.conf\nrelative/ignored\n")
	write("conf.d/b.conf", "/opt/b /opt/c # two on a line\ninclude ../ld.so.conf\n")
	r := &resolver{}
	got := strings.Join(r.ldSoConf(filepath.Join(dir, "ld.so.conf")), " ")
	if got != "/opt/a /opt/b /opt/c" {
		t.Errorf("ldSoConf = %q, want /opt/a /opt/b /opt/c", got)
	}
}

func TestSplitPaths(t *testing.T) {
	got := strings.Join(splitPaths([]string{"$ORIGIN/../lib:/usr/local/lib::rel", "${ORIGIN}"}, "/opt/app/bin"), " ")
	if got != "/opt/app/lib /usr/local/lib /opt/app/bin" {
		t.Errorf("splitPaths = %q", got)
	}
}
