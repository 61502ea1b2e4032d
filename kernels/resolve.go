package kernels

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
)

// Options tune Resolve. The zero value works: default cache, client,
// keyring and logger.
type Options struct {
	Cache *Cache
	// Client fetches from mirrors; nil means a client with connect and
	// header timeouts (bodies are bounded by ctx).
	Client *http.Client
	// Keyring is an OpenPGP keyring (binary or armored) that InRelease
	// files must be signed with; "" means DefaultKeyring when it exists.
	Keyring string
	// Refresh ignores cached resolutions and re-reads the mirror's index.
	// Downloaded packages are still reused when they are what the index
	// names.
	Refresh bool
	Logger  *slog.Logger // nil: slog.Default()
	// Pin, when set, is what a lock file recorded for this kernel and arch:
	// the source resolves to exactly that (see ResolvePinned).
	Pin *Origin
	// Offline resolves from the cache alone: nothing is downloaded, and a
	// kernel the cache does not have is an error wrapping ErrNotCached.
	// Resolutions are used however old they are, without a warning.
	Offline bool
}

// Resolve turns a matrix source into a cached, bootable Kernel for arch.
// name is the kernel's name in the matrix, copied into Kernel.Name.
func Resolve(ctx context.Context, name string, spec Spec, arch Arch, opts Options) (*Kernel, error) {
	if arch != X86_64 && arch != ARM64 {
		return nil, fmt.Errorf("resolve kernel %q: %w: unsupported arch %q (want x86_64 or arm64)", name, ErrBadInput, arch)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Client == nil {
		opts.Client = defaultClient
	}
	if opts.Offline {
		opts.Client = offlineClient
		// "unreachable, using the resolution cached earlier" is expected.
		if !opts.Logger.Enabled(ctx, slog.LevelDebug) {
			opts.Logger = slog.New(minLevel{opts.Logger.Handler(), slog.LevelError})
		}
	}
	if opts.Cache == nil {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, fmt.Errorf("resolve kernel %q: %w", name, err)
		}
		if opts.Cache, err = OpenCache(dir); err != nil {
			return nil, fmt.Errorf("resolve kernel %q: %w", name, err)
		}
	}
	opts.Logger = opts.Logger.With("kernel", name, "arch", arch)

	var (
		k   *Kernel
		err error
	)
	switch {
	case opts.Pin != nil:
		k, err = resolvePinned(ctx, spec, *opts.Pin, arch, opts)
	case spec.Debian != nil:
		k, err = resolveDebian(ctx, *spec.Debian, arch, opts)
	case spec.Ubuntu != nil:
		k, err = resolveUbuntu(ctx, *spec.Ubuntu, arch, opts)
	case spec.RPM != nil:
		k, err = resolveRPM(ctx, *spec.RPM, arch, opts)
	case spec.OCI != "":
		k, err = resolveOCI(ctx, spec.OCI, arch, opts)
	case spec.Mainline != nil:
		k, err = resolveMainline(ctx, *spec.Mainline, arch, opts)
	case spec.Deb != nil:
		k, err = resolveDeb(ctx, *spec.Deb, arch, opts)
	case spec.File != nil:
		k, err = resolveFile(ctx, *spec.File, arch, opts)
	case spec.Build != nil:
		k, err = resolveBuild(ctx, *spec.Build, arch, opts)
	default:
		err = fmt.Errorf("%w: no source (want debian, ubuntu, rpm, oci, ubuntu-mainline, deb, file or build)", ErrBadInput)
	}
	if err == nil && k.BTF != "" && k.BTFFrom == "" {
		k.BTFFrom = filepath.Base(k.BTF) + " in " + k.Origin.URL // shipped with the kernel
	}
	if err == nil && spec.BTF != nil {
		var p string
		if p, err = resolveBTF(ctx, *spec.BTF, opts); err == nil {
			k.BTF, k.BTFFrom, k.BTFReplaces = p, spec.BTF.where(), true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("resolve kernel %q: %w", name, err)
	}
	k.Name = name
	return k, nil
}

// ErrNotCached is what an Offline resolve gives for a kernel the cache does
// not have.
var ErrNotCached = fmt.Errorf("%w: not in the cache (offline)", ErrUnreachable)

// offlineClient never connects: resolving with it finds what the cache has.
var offlineClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, ErrNotCached
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// minLevel raises the minimum level of a handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
