package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/kernels"
)

// copyCache makes a cache holding the user cache's kernels ks (their
// downloads, kernel directories and Debian resolutions), files hard-linked
// so that the copy is cheap; a test that damages a file must break its link
// first (breakLink).
func copyCache(t *testing.T, ks ...*kernels.Kernel) string {
	t.Helper()
	from, err := kernels.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "cache")
	link := func(rel string) {
		t.Helper()
		src := filepath.Join(from, rel)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(from, p)
			dst := filepath.Join(to, r)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.Link(p, dst)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range ks {
		link(filepath.Join("blobs", "sha256", k.SHA256))
		link(filepath.Join("kernels", k.SHA256))
	}
	indexes, _ := filepath.Glob(filepath.Join(from, "index", "debian", "*.json"))
	os.MkdirAll(filepath.Join(to, "index", "debian"), 0o755)
	for _, p := range indexes {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, "index", "debian", filepath.Base(p)), data, 0o644)
	}
	return to
}

// breakLink replaces a hard-linked file by a copy of its own, so that
// damaging it leaves the user cache alone.
func breakLink(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	os.Remove(p)
	if err := os.WriteFile(p, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func sha256Of(t *testing.T, p string) string {
	t.Helper()
	sum, err := fileutil.FileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestCopiedCacheRepair damages a copy of the user's cached Debian 6.1
// x86_64 kernel as a disk or a person would (a byte patched in vmlinux, the
// bzImage truncated, virtio_console.ko deleted): vmrunner notices before
// use, extracts the kernel again from its verified .deb and boots it. Then
// the suite's resolution is made to point at the trixie kernel's .deb:
// vmrunner reads the mirror again rather than boot 6.12 under the name 6.1.
func TestCopiedCacheRepair(t *testing.T) {
	integration(t)
	ctx := context.Background()
	resolve := func(suite string) *kernels.Kernel {
		k, err := kernels.Resolve(ctx, suite, kernels.Spec{Debian: &kernels.DebianSpec{Suite: suite}}, kernels.X86_64, kernels.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	bookworm, trixie := resolve("bookworm"), resolve("trixie")
	cache := copyCache(t, bookworm, trixie)
	matrix := writeFile(t, "matrix.yaml", "kernels: [{name: \"6.1\", arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks: [btf]\n")
	if res := vmrunnerCLI(t, "kernels", "pull", "--cache-dir", cache, matrix); res.code != 0 {
		t.Fatalf("pull into the copy: exit %d", res.code)
	}
	dir := filepath.Join(cache, "kernels", bookworm.SHA256)
	k, err := kernels.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	consoles, _ := filepath.Glob(filepath.Join(k.Modules, "kernel", "drivers", "char", "virtio_console.ko*"))
	if len(consoles) != 1 || k.Uncompressed == "" {
		t.Fatalf("virtio_console modules %v, vmlinux %q", consoles, k.Uncompressed)
	}
	sums := map[string]string{}
	for _, p := range []string{k.Uncompressed, k.Image, consoles[0]} {
		sums[p] = sha256Of(t, p)
	}

	breakLink(t, k.Uncompressed)
	f, err := os.OpenFile(k.Uncompressed, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xcc}, 1<<20)
	f.Close()
	breakLink(t, k.Image)
	os.Truncate(k.Image, 4096)
	os.Remove(consoles[0])

	res := vmrunnerCLI(t, "kernels", "pull", "--cache-dir", cache, matrix)
	if res.code != 0 {
		t.Fatalf("pull after damage: exit %d", res.code)
	}
	for _, want := range []string{"cached kernel damaged, extracting it again", "vmlinux was modified",
		"has 4096 bytes", filepath.Base(consoles[0]) + " is missing"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("pull after damage does not say %q", want)
		}
	}
	for p, want := range sums {
		if got := sha256Of(t, p); got != want {
			t.Errorf("%s after repair: sha256 %s, want %s", p, got, want)
		}
	}
	out := t.TempDir()
	if res := vmrunnerCLI(t, "run", matrix, "--cache-dir", cache, "--out", out, "--agent-dir", binDir); res.code != 0 {
		t.Fatalf("run on the repaired cache: exit %d", res.code)
	}

	// A resolution naming another suite's .deb (already extracted).
	indexes, _ := filepath.Glob(filepath.Join(cache, "index", "debian", "bookworm_amd64_amd64_*.json"))
	if len(indexes) != 1 {
		t.Fatalf("bookworm resolutions: %v", indexes)
	}
	var r map[string]any
	data, _ := os.ReadFile(indexes[0])
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r["package"].(map[string]any)["sha256"] = trixie.SHA256
	r["fetched"] = time.Now().UTC()
	data, _ = json.Marshal(r)
	os.WriteFile(indexes[0], data, 0o644)

	res = vmrunnerCLI(t, "kernels", "list", "--cache-dir", cache, matrix) // offline
	if strings.Contains(res.stdout, trixie.Release) {
		t.Errorf("kernels list shows %s for 6.1", trixie.Release)
	}
	out = t.TempDir()
	res = vmrunnerCLI(t, "run", matrix, "--cache-dir", cache, "--out", out, "--agent-dir", binDir)
	if res.code != 0 || !strings.Contains(res.stderr, "cached resolution names another kernel, reading the mirror again") {
		t.Fatalf("run with a forged resolution: exit %d", res.code)
	}
	rf, _ := readResults(t, out)
	if len(rf.Results) != 1 || rf.Results[0].KernelRelease != bookworm.Release || rf.Results[0].Source.SHA256 != bookworm.SHA256 {
		t.Errorf("forged resolution booted %+v, want %s", rf.Results, bookworm.Release)
	}
}

// TestFileKernelSignal: a file: kernel at /dev/zero or a FIFO used to be
// read forever at 100% CPU, deaf to SIGINT and SIGTERM. Now vmrunner
// refuses it (exit 2) or, if a signal comes first, stops (exit 130): either
// way it exits, promptly, with no VM booted.
func TestFileKernelSignal(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kernel string
		sig    syscall.Signal
	}{
		{"/dev/zero", syscall.SIGINT},
		{fifo, syscall.SIGTERM},
	} {
		t.Run(filepath.Base(tc.kernel), func(t *testing.T) {
			matrix := writeFile(t, "matrix.yaml", "kernels: [{name: k, arch: x86_64, source: {file: {kernel: \""+tc.kernel+"\"}}}]\nchecks: [btf]\n")
			out := t.TempDir()
			cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "run", matrix, "--cache-dir", filepath.Join(dir, "cache"), "--out", out)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once vmrunner says it is at the kernel (or has ended).
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			signalled := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !signalled && strings.Contains(sc.Text(), "k/x86_64") {
					_ = cmd.Process.Signal(tc.sig)
					signalled = true
				}
			}
			_, _ = io.Copy(io.Discard, stderr)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(2 * time.Minute): // a hang detector, not a timing assertion
				_ = cmd.Process.Kill()
				t.Fatalf("vmrunner still running 2 minutes after %v; stderr:\n%s", tc.sig, log.String())
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(werr, &ee) {
				code = ee.ExitCode()
			}
			r, _ := readResults(t, out)
			switch code {
			case 2:
				if len(r.Results) != 2 || r.Results[1].Check != "vm" || r.Results[1].ErrorKind != "bad-input" ||
					r.Results[0].ErrorKind != "bad-input" || !strings.Contains(r.Results[0].Message, "not a regular file") {
					t.Errorf("exit 2 with records %+v", r.Results)
				}
			case 130:
				// The signal may land after the kernel was refused: the
				// record then keeps its bad-input verdict, and the run
				// still exits 130 (130 outranks 2).
				if len(r.Results) != 2 || r.Results[1].Check != "vm" || (r.Results[0].ErrorKind != "interrupted" && r.Results[0].ErrorKind != "bad-input") {
					t.Errorf("exit 130 with records %+v", r.Results)
				}
			default:
				t.Errorf("exit %d (%v), want 2 or 130; stderr:\n%s", code, werr, log.String())
			}
		})
	}
}
