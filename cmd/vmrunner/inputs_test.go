package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCLIErr runs the CLI in process and returns its exit code, what it
// printed, and the error it ends with (what main prints on stderr).
func runCLIErr(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return exitCode(err), out.String(), msg
}

// TestRunRefusesOutsideObjects: a matrix naming /etc/shadow (or any file
// outside its directory) as a verifier object exits 2 before anything is
// resolved, built or booted, and nothing of it reaches the cache.
func TestRunRefusesOutsideObjects(t *testing.T) {
	dir := t.TempDir()
	matrix := filepath.Join(dir, "matrix.yaml")
	os.WriteFile(matrix, []byte("kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks:\n  - verifier: {objects: [\"/etc/*\"]}\n"), 0o644)
	cache := filepath.Join(dir, "cache")
	code, out, msg := runCLIErr(t, "run", matrix, "--cache-dir", cache, "--out", filepath.Join(dir, "results"))
	if code != 2 || !strings.Contains(msg, "is outside the matrix's directory "+dir) || !strings.Contains(msg, "name it on the command line") {
		t.Fatalf("run with objects /etc/*: exit %d, %q\n%s", code, msg, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "initramfs")); len(entries) != 0 {
		t.Errorf("initramfs cache holds %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); !os.IsNotExist(err) {
		t.Errorf("a run directory was made: %v", err)
	}
}

// TestRunRefusesSpecialObjects: the files the host reads while it parses a
// matrix (verifier objects, an attach_to object, a uprobe binary) or a
// repro --object are read only if they are regular files of at most 512
// MiB: a FIFO (whose open or read would block forever), a huge sparse file
// and a symlink to /dev/zero (read forever) each exit 2 at once, naming the
// file and what it is or the limit, before anything is resolved or booted.
func TestRunRefusesSpecialObjects(t *testing.T) {
	dir := t.TempDir()
	probes, err := os.ReadFile("../../testdata/bpf/probes.o")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "probes.o"), probes, 0o644)
	fifo := filepath.Join(dir, "fifo.o")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.o")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3 << 30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	zero := filepath.Join(dir, "zero.o")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	special := []struct{ file, what string }{
		{fifo, fifo + " is a FIFO, not a regular file"},
		{huge, huge + " is 3.0 GiB, too large: the limit is 512 MiB"},
		{zero, zero + " is a character device, not a regular file"},
	}
	for _, sp := range special {
		for _, tc := range []struct{ name, check string }{
			{"object", `{objects: ["` + filepath.Base(sp.file) + `"]}`},
			{"glob", `{objects: ["*.o"]}`},
			{"attach_to object", `{objects: [{path: probes.o, attach_to: {rejected_stack_oob: {object: ` + filepath.Base(sp.file) + `, program: x}}}]}`},
			{"uprobe binary", `{objects: [{path: probes.o, uprobe_binary: ` + filepath.Base(sp.file) + `}]}`},
		} {
			t.Run(filepath.Base(sp.file)+"/"+tc.name, func(t *testing.T) {
				matrix := filepath.Join(dir, "matrix.yaml")
				os.WriteFile(matrix, []byte("kernels: [{name: k, arch: x86_64, source: {debian: {suite: bookworm}}}]\nchecks:\n  - verifier: "+tc.check+"\n"), 0o644)
				code, msg := runBounded(t, "run", matrix, "--cache-dir", filepath.Join(dir, "cache"), "--out", filepath.Join(dir, "results"))
				if code != 2 || !strings.Contains(msg, sp.what) || !strings.Contains(msg, "matrix.yaml:") {
					t.Errorf("exit %d, %q; want 2 at matrix.yaml:LINE:COL with %q", code, msg, sp.what)
				}
			})
		}
		t.Run(filepath.Base(sp.file)+"/repro --object", func(t *testing.T) {
			code, msg := runBounded(t, "repro", "--matrix", "../../matrix.yaml", "--kernel", "6.1", "--object", sp.file, "--cache-dir", filepath.Join(dir, "cache"), "--out", filepath.Join(dir, "results"))
			if code != 2 || !strings.Contains(msg, sp.what) {
				t.Errorf("exit %d, %q; want 2 with %q", code, msg, sp.what)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); !os.IsNotExist(err) {
		t.Errorf("a run directory was made: %v", err)
	}
}

// runBounded is runCLIErr for a run that must end at once: one blocked on
// a FIFO fails the test instead of hanging it.
func runBounded(t *testing.T, args ...string) (int, string) {
	t.Helper()
	type result struct {
		code int
		msg  string
	}
	done := make(chan result, 1)
	go func() {
		code, _, msg := runCLIErr(t, args...)
		done <- result{code, msg}
	}()
	select {
	case r := <-done:
		return r.code, r.msg
	case <-time.After(time.Minute):
		t.Fatalf("vmrunner %v still running after a minute: blocked on a special file", args)
		return 0, ""
	}
}

// TestRunRefusesSpecialKernel: a file: kernel at /dev/zero or a FIFO is
// bad input at once (it used to be read forever at 100% CPU).
func TestRunRefusesSpecialKernel(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kernel, what string }{
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
		{fifo, fifo + " is a FIFO, not a regular file"},
	} {
		matrix := filepath.Join(dir, "matrix.yaml")
		os.WriteFile(matrix, []byte("kernels: [{name: k, arch: x86_64, source: {file: {kernel: \""+tc.kernel+"\"}}}]\nchecks: [btf]\n"), 0o644)
		out := filepath.Join(dir, "results")
		code, printed, _ := runCLIErr(t, "run", matrix, "--cache-dir", filepath.Join(dir, "cache"), "--out", out)
		if code != 2 || !strings.Contains(printed, "bad-input") {
			t.Errorf("file: kernel %s: exit %d\n%s", tc.kernel, code, printed)
		}
		r, _ := readResults(t, out)
		// The check's record and the VM's own: it never booted.
		if len(r.Results) != 2 || r.Results[1].Check != "vm" {
			t.Errorf("file: kernel %s: records %+v, want btf and vm", tc.kernel, r.Results)
		}
		for _, rec := range r.Results {
			if rec.Status != "error" || rec.ErrorKind != "bad-input" || !strings.Contains(rec.Message, "file.kernel: "+tc.what) {
				t.Errorf("file: kernel %s: %s record %+v", tc.kernel, rec.Check, rec)
			}
		}
	}
}

// TestPullDiskFull: a kernel download into a full cache disk exits 3 and
// says "no space left on device", not "mirror unreachable".
func TestPullDiskFull(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	os.Mkdir(cache, 0o755)
	if err := syscall.Mount("tmpfs", cache, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(cache, syscall.MNT_DETACH) })
	body := make([]byte, 2<<20)
	rand.Read(body)
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	matrix := filepath.Join(dir, "matrix.yaml")
	os.WriteFile(matrix, []byte("kernels: [{name: k, arch: x86_64, source: {deb: {url: \""+srv.URL+"/k.deb\", sha256: "+hex.EncodeToString(sum[:])+"}}}]\nchecks: [btf]\n"), 0o644)
	code, out, msg := runCLIErr(t, "kernels", "pull", "--cache-dir", cache, matrix)
	if code != 3 || !strings.Contains(msg, "no space left on device") || strings.Contains(msg, "unreachable") || !strings.Contains(msg, "vmrunner kernels prune") {
		t.Fatalf("pull into a full disk: exit %d, %q\n%s", code, msg, out)
	}
}
