package initramfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/vmrunner/vmrunner/kernels"
)

func testOptions(t *testing.T) (Options, map[string][]byte) {
	t.Helper()
	modules, elfs := fakeModulesDir(t)
	tmp := t.TempDir()
	agent := filepath.Join(tmp, "agent")
	writeFile(t, agent, []byte("\x7fELF pretend agent"))
	config := filepath.Join(tmp, "config")
	writeFile(t, config, []byte("CONFIG_BPF=y\n# CONFIG_BPF_LSM is not set\n"))
	return Options{
		Kernel: &kernels.Kernel{
			Arch:    kernels.X86_64,
			Release: "6.1.0-test",
			Modules: modules,
			Config:  config,
		},
		Agent:    agent,
		CacheDir: filepath.Join(tmp, "cache"),
	}, elfs
}

func readArchive(t *testing.T, path string) map[string]cpio.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cpio.Record{}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Name] {
			t.Errorf("%s appears twice", r.Name)
		}
		// The kernel creates no parent directories.
		if dir := filepath.Dir(r.Name); dir != "." && !seen[dir] {
			t.Errorf("%s comes before its directory", r.Name)
		}
		seen[r.Name] = true
		out[r.Name] = r
	}
	return out
}

func content(t *testing.T, r cpio.Record) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuild(t *testing.T) {
	opts, elfs := testOptions(t)
	path, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(opts.CacheDir, "initramfs") || filepath.Ext(path) != ".cpio" {
		t.Errorf("archive at %s", path)
	}
	recs := readArchive(t, path)

	init, ok := recs["init"]
	if !ok {
		t.Fatal("no /init")
	}
	if init.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("/init mode %#o", init.Mode)
	}
	if got := content(t, init); string(got) != "\x7fELF pretend agent" {
		t.Errorf("/init = %q", got)
	}
	if c := recs["dev/console"]; c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("/dev/console = %v", c.Info)
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp"} {
		if recs[d].Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("/%s is not a directory", d)
		}
	}

	list := string(content(t, recs["etc/vmrunner/modules"]))
	root := "/lib/modules/6.1.0-test/kernel/drivers/"
	want := strings.Join([]string{
		root + "virtio/virtio.ko",
		root + "virtio/virtio_ring.ko",
		root + "virtio/virtio_mmio.ko",
		root + "char/virtio_console.ko",
		root + "misc/pvpanic/pvpanic-mmio.ko",
	}, "\n") + "\n"
	if list != want {
		t.Fatalf("module list:\n%s\nwant:\n%s", list, want)
	}
	for _, p := range strings.Fields(list) {
		r, ok := recs[strings.TrimPrefix(p, "/")]
		if !ok {
			t.Errorf("%s listed but not in the archive", p)
			continue
		}
		if got := content(t, r); !bytes.Equal(got, elfs[moduleName(p)]) {
			t.Errorf("%s is not the decompressed module", p)
		}
	}

	if got := string(content(t, recs["boot/config-6.1.0-test"])); !strings.Contains(got, "CONFIG_BPF=y") {
		t.Errorf("config = %q", got)
	}
}

func TestBuildReproducible(t *testing.T) {
	opts, _ := testOptions(t)
	ctx := context.Background()
	first, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(first)

	// A cache hit returns the same file untouched.
	again, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(again)
	if again != first || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second build: %s (modified %v), want %s untouched", again, after.ModTime(), first)
	}

	// Same inputs in another cache: same name, same bytes.
	other := opts
	other.CacheDir = filepath.Join(t.TempDir(), "cache2")
	second, err := Build(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(second) != filepath.Base(first) {
		t.Errorf("same inputs, different names: %s, %s", first, second)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !bytes.Equal(a, b) {
		t.Error("same inputs, different bytes")
	}

	// Any input change gives another archive.
	k := *opts.Kernel
	k.Config = ""
	other.Kernel = &k
	noConfig, err := Build(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(noConfig) == filepath.Base(first) {
		t.Error("dropping the config kept the cache key")
	}
	if _, ok := readArchive(t, noConfig)["boot/config-6.1.0-test"]; ok {
		t.Error("config in an archive built without one")
	}
	writeFile(t, opts.Agent, []byte("another agent"))
	changed, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Error("changing the agent kept the cache key")
	}
}

func TestBuildErrors(t *testing.T) {
	opts, _ := testOptions(t)
	ctx := context.Background()
	for name, mutate := range map[string]func(*Options){
		"no kernel":         func(o *Options) { o.Kernel = nil },
		"no agent":          func(o *Options) { o.Agent = filepath.Join(t.TempDir(), "missing") },
		"no cache":          func(o *Options) { o.CacheDir = "" },
		"missing dep":       func(o *Options) { o.Modules = []string{"broken"} },
		"unreadable config": func(o *Options) { k := *o.Kernel; k.Config = "/nonexistent"; o.Kernel = &k },
	} {
		o := opts
		mutate(&o)
		if _, err := Build(ctx, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Build(cancelled, opts); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestBuildConcurrent(t *testing.T) {
	opts, _ := testOptions(t)
	paths := make(chan string, 4)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			p, err := Build(context.Background(), opts)
			paths <- p
			errs <- err
		}()
	}
	var first string
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		p := <-paths
		if first == "" {
			first = p
		} else if p != first {
			t.Errorf("concurrent builds disagree: %s, %s", first, p)
		}
	}
	readArchive(t, first)
	leftovers, _ := filepath.Glob(filepath.Join(opts.CacheDir, "initramfs", "*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// A cached archive that was truncated or altered after it was written is
// rebuilt, not handed to QEMU.
func TestBuildRepairsDamagedCache(t *testing.T) {
	opts, _ := testOptions(t)
	ctx := context.Background()
	path, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, damage := range []func() error{
		func() error { return os.Truncate(path, int64(len(good)/2)) },
		func() error { return os.WriteFile(path, append([]byte("x"), good[1:]...), 0o644) },
		func() error { return os.Remove(path + ".sha256") },
		// Patched after its seal came to trust its time: the write
		// moves the time, and the content is hashed again.
		func() error {
			age(t, path)
			if _, err := Build(ctx, opts); err != nil {
				return err
			}
			return os.WriteFile(path, append([]byte("y"), good[1:]...), 0o600)
		},
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		again, err := Build(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(again)
		if again != path || !bytes.Equal(got, good) {
			t.Errorf("after damage: %s has %d bytes, want the original %d", again, len(got), len(good))
		}
	}
}

// TestBuildOnDemand: modules asked for on demand are packed with their
// dependencies and listed in the index, not loaded at boot.
func TestBuildOnDemand(t *testing.T) {
	opts, elfs := testOptions(t)
	dir := opts.Kernel.Modules
	add := func(rel, name, soft string, deps ...string) {
		b := fakeModuleSoft(t, name, soft, deps...)
		elfs[name] = b
		writeFile(t, filepath.Join(dir, "kernel", rel), compress(t, ".ko.xz", b))
	}
	add("net/netfilter/nf_defrag_ipv4.ko.xz", "nf_defrag_ipv4", "")
	add("net/netfilter/nf_conntrack.ko.xz", "nf_conntrack", "", "nf_defrag_ipv4", "libcrc32c", "virtio")
	// libcrc32c asks the crypto API for its algorithm at init: its soft
	// dependencies: crc32c, built in here, and crct10dif, provided by
	// crct10dif_generic; sha1 is in no module.
	add("lib/libcrc32c.ko.xz", "libcrc32c", "pre: crc32c crct10dif sha1 post: nothing")
	add("crypto/crct10dif_generic.ko.xz", "crct10dif_generic", "")
	plain, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.OnDemand = []string{"nf-conntrack", "crc32c", "not_there", "nf_conntrack"}
	path, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if path == plain {
		t.Error("on-demand modules do not change the cache key")
	}
	recs := readArchive(t, path)
	root := "/lib/modules/6.1.0-test/kernel/"
	// Dependencies first, in the order nf_conntrack names them, soft ones
	// before their module; crc32c is built in; not_there is not in this
	// kernel.
	want := "nf_conntrack " + root + "net/netfilter/nf_defrag_ipv4.ko " + root + "crypto/crct10dif_generic.ko " + root + "lib/libcrc32c.ko " +
		root + "drivers/virtio/virtio.ko " + root + "net/netfilter/nf_conntrack.ko\ncrc32c\n"
	if got := string(content(t, recs["etc/vmrunner/modules.ondemand"])); got != want {
		t.Errorf("index:\n%s\nwant:\n%s", got, want)
	}
	for _, rel := range []string{"net/netfilter/nf_defrag_ipv4", "net/netfilter/nf_conntrack", "lib/libcrc32c", "crypto/crct10dif_generic"} {
		name := filepath.Base(rel)
		r, ok := recs[strings.TrimPrefix(root, "/")+rel+".ko"]
		if !ok || !bytes.Equal(content(t, r), elfs[name]) {
			t.Errorf("%s not packed decompressed", name)
		}
	}
	if list := string(content(t, recs["etc/vmrunner/modules"])); strings.Contains(list, "netfilter") || strings.Contains(list, "libcrc32c") {
		t.Errorf("on-demand modules loaded at boot:\n%s", list)
	}
}

// age sets path's modification time an hour back, as a cache entry left by
// an earlier run has it.
func age(t *testing.T, path string) time.Time {
	t.Helper()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return old
}

// TestSealByTime: an archive is checked by its size and modification time
// once its time is older than racyWindow; before that, and whenever the
// time is not the recorded one, its content is hashed again.
func TestSealByTime(t *testing.T) {
	opts, _ := testOptions(t)
	ctx := context.Background()
	path, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readSeal(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if s.mtime != 0 || s.size != fi.Size() {
		t.Errorf("seal of an archive just written: %+v, want size %d and time unknown", s, fi.Size())
	}
	old := age(t, path)
	if again, err := Build(ctx, opts); err != nil || again != path {
		t.Fatalf("aged archive: %s, %v", again, err)
	}
	if s, _ = readSeal(path); s.mtime != old.UnixNano() {
		t.Errorf("seal after the check: time %d, want the archive's %d", s.mtime, old.UnixNano())
	}
	before, _ := os.ReadFile(path + ".sha256")
	sealInfo, _ := os.Stat(path + ".sha256")
	if again, err := Build(ctx, opts); err != nil || again != path {
		t.Fatalf("sealed archive: %s, %v", again, err)
	}
	after, _ := os.ReadFile(path + ".sha256")
	sealAfter, _ := os.Stat(path + ".sha256")
	if !bytes.Equal(before, after) || !sealAfter.ModTime().Equal(sealInfo.ModTime()) {
		t.Errorf("a check with the recorded time rewrote the seal: %q → %q", before, after)
	}

	// A seal of an older vmrunner (the hash alone) is accepted and made
	// one with the time.
	sum, _ := Digest(path)
	if err := os.WriteFile(path+".sha256", []byte(sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if again, err := Build(ctx, opts); err != nil || again != path {
		t.Fatalf("older seal: %s, %v", again, err)
	}
	if s, _ = readSeal(path); s.sum != sum || s.mtime != old.UnixNano() {
		t.Errorf("older seal rewritten as %+v", s)
	}
	if d, err := Digest(path); err != nil || d != sum {
		t.Errorf("Digest = %s, %v; want %s", d, err, sum)
	}
	leftovers, _ := filepath.Glob(filepath.Join(opts.CacheDir, "initramfs", "*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestBuildNeverStale: whatever input changes, even with its size and
// modification time put back, Build returns an archive holding the new
// content, never the one built before (inputs are read and hashed every
// time; only the archive's own check goes by its time).
func TestBuildNeverStale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input func(Options) string
	}{
		{"agent", func(o Options) string { return o.Agent }},
		{"config", func(o Options) string { return o.Kernel.Config }},
		{"module", func(o Options) string { return filepath.Join(o.Kernel.Modules, "kernel/drivers/virtio/virtio.ko") }},
		{"extra file", func(o Options) string { return o.Extra[0].Source }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := testOptions(t)
			obj := filepath.Join(t.TempDir(), "probes.o")
			writeFile(t, obj, []byte("\x7fELF pretend object"))
			opts.Extra = []File{{Path: "/vmrunner/objects/probes.o", Source: obj}}
			ctx := context.Background()
			first, err := Build(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			age(t, first)
			if _, err := Build(ctx, opts); err != nil { // the seal now trusts the archive's time
				t.Fatal(err)
			}

			in := tc.input(opts)
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(in)
			changed := bytes.Clone(b)
			changed[len(changed)-1] ^= 0xff // same size
			writeFile(t, in, changed)
			if err := os.Chtimes(in, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}

			got, err := Build(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got == first {
				t.Fatalf("%s changed, same archive %s", tc.name, got)
			}
			// Packed as they are (the module is not compressed here): the
			// new bytes are in the archive and the old ones are not.
			all, _ := os.ReadFile(got)
			if !bytes.Contains(all, changed) || bytes.Contains(all, b) {
				t.Errorf("archive %s does not hold the changed %s in place of the old one", got, tc.name)
			}
		})
	}
}
