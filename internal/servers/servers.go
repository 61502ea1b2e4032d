package servers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/program"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// Spec is what is fetched: the servers, the shell initdb needs and the
// time zone data, with their libraries.
var Spec = kernels.PackagesSpec{
	Suite:    "bookworm",
	Packages: []string{"postgresql-15", "redis-server", "redis-tools", "dash", "tzdata"},
	// PostgreSQL's JIT: 25 MB a package, never loaded (jit = off).
	Skip: []string{"libllvm*"},
}

// MinMemoryMiB is the least memory of a VM that runs the servers: their
// 82-84 MB go into the initramfs, which the kernel holds twice while it
// unpacks it. At 512 MiB an archive of 128 MB unpacked and one of 139 MB
// (with a Beyla binary) failed with "Initramfs unpacking failed: write
// error" on 6.1 x86_64 and arm64.
const MinMemoryMiB = 768

// Where the packages install what the guest runs.
const (
	pgBin     = "/usr/lib/postgresql/15/bin"
	pgLib     = "/usr/lib/postgresql/15/lib"
	pgShare   = "/usr/share/postgresql/15"
	redisBin  = "/usr/bin/redis-server"
	redisReal = "/usr/bin/redis-check-rdb"
)

// Files fetches the servers' packages for arch into cache and lists the
// files to pack for the guest. The manifest is written into the cache
// under its own hash.
func Files(ctx context.Context, cache *kernels.Cache, arch kernels.Arch, log *slog.Logger) ([]initramfs.File, error) {
	pkgs, err := kernels.FetchPackages(ctx, Spec, arch, kernels.Options{Cache: cache, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("fetch the workload's servers: %w", err)
	}
	root := pkgs.Root
	var files []initramfs.File
	seen := map[string]bool{}
	add := func(guest, host string, mode os.FileMode) {
		if !seen[guest] {
			seen[guest] = true
			files = append(files, initramfs.File{Path: guest, Source: host, Mode: mode})
		}
	}
	// programs are packed at the guest path given, read from the host
	// file the package's path resolves to, with their libraries.
	programs := []struct{ guest, pkgPath string }{
		{pgBin + "/postgres", pgBin + "/postgres"},
		{pgBin + "/initdb", pgBin + "/initdb"},
		{redisBin, redisReal},
		{"/bin/sh", "/bin/dash"},
	}
	for _, p := range programs {
		host := filepath.Join(root, p.pkgPath)
		prog, err := program.Inspect(host, program.Options{Arch: arch, Sysroot: root})
		if err != nil {
			return nil, fmt.Errorf("pack the workload's servers: %w", err)
		}
		add(p.guest, host, 0o755)
		for _, n := range prog.Needs {
			add(n.Guest, n.Host, 0o755)
		}
	}
	// The server's modules (plpgsql, the snowball dictionaries initdb
	// loads) and its share directory.
	mods, err := filepath.Glob(filepath.Join(root, pgLib, "*.so"))
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if !strings.HasPrefix(filepath.Base(m), "llvmjit") {
			add(path.Join(pgLib, filepath.Base(m)), m, 0o644)
		}
	}
	err = filepath.WalkDir(filepath.Join(root, pgShare), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		// A link out of the packages (to the system's tzdata) is left.
		if host, ok := within(root, p); ok {
			add("/"+filepath.ToSlash(rel), host, 0o644)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack the workload's servers: %w", err)
	}
	for _, z := range []string{"Etc/UTC", "UTC", "Etc/GMT", "GMT"} {
		if host, ok := within(root, filepath.Join(root, "usr/share/zoneinfo", z)); ok {
			add("/usr/share/zoneinfo/"+z, host, 0o644)
		}
	}
	manifest, err := writeManifest(cache.Dir, pkgs)
	if err != nil {
		return nil, err
	}
	add(protocol.ServersManifestPath, manifest, 0o644)
	return files, nil
}

// within resolves p's links and says whether it stays under root.
func within(root, p string) (string, bool) {
	host, err := filepath.EvalSymlinks(p)
	return host, err == nil && strings.HasPrefix(host, root+string(filepath.Separator))
}

// writeManifest writes the guest's protocol.WorkloadServers into the cache
// under its hash and returns its path.
func writeManifest(cacheDir string, pkgs *kernels.Packages) (string, error) {
	version := func(name string) string {
		for _, p := range pkgs.Packages {
			if p.Package == name {
				return p.Version
			}
		}
		return ""
	}
	m := protocol.WorkloadServers{
		Postgres: &protocol.ServerPackage{Package: "postgresql-15", Version: version("postgresql-15"), Suite: pkgs.Suite, Bin: pgBin + "/postgres"},
		Redis:    &protocol.ServerPackage{Package: "redis-server", Version: version("redis-server"), Suite: pkgs.Suite, Bin: redisBin},
	}
	data, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	p := filepath.Join(cacheDir, "servers", "manifest-"+hex.EncodeToString(sum[:8])+".json")
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("write servers manifest: %w", err)
	}
	if err := results.WriteFileAtomic(p, data); err != nil {
		return "", fmt.Errorf("write servers manifest: %w", err)
	}
	return p, nil
}
