package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
	"github.com/vmrunner/vmrunner/vmrunner"
)

// kernelError maps a kernel source error to its exit code: bad input 2,
// anything else 3.
func kernelError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kernels.ErrBadInput) {
		return &exitError{code: results.ExitBadInput, err: err}
	}
	return err
}

type kernelsFlags struct {
	cacheDir string
	logLevel string
	refresh  bool
	arches   []string
}

func (f *kernelsFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cacheDir, "cache-dir", "", "kernel cache (default: $VMRUNNER_CACHE or the user cache dir)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fl.StringArrayVar(&f.arches, "arch", nil, "only this arch: x86_64 or arm64 (repeatable)")
}

// open loads the matrix, its lock and the cache.
func (f *kernelsFlags) open(cmd *cobra.Command, path string) (*vmrunner.Matrix, *kernels.LockFile, *kernels.Cache, *slog.Logger, error) {
	log, err := newLogger(f.logLevel, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var arches []kernels.Arch
	for _, a := range f.arches {
		pa, err := kernels.ParseArch(a)
		if err != nil {
			return nil, nil, nil, nil, usagef("--arch: %v", err)
		}
		arches = append(arches, pa)
	}
	m, err := vmrunner.LoadMatrix(path)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if m, err = m.Select(nil, arches, nil); err != nil {
		return nil, nil, nil, nil, err
	}
	lock, err := vmrunner.LoadLock(m, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	dir := f.cacheDir
	if dir == "" {
		if dir, err = kernels.DefaultCacheDir(); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	c, err := kernels.OpenCache(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return m, lock, c, log, nil
}

// offline is an HTTP client that never connects: resolving with it finds
// what the cache has and nothing else.
var offline = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline: not downloading")
})}

// offlineLog keeps only errors and debug output of offline resolves: their
// "mirror unreachable, using the resolution cached earlier" warnings are
// expected.
func offlineLog(log *slog.Logger) *slog.Logger {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return log
	}
	return slog.New(levelHandler{log.Handler(), slog.LevelError})
}

// levelHandler raises the minimum level of a handler.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(as), h.min}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(name), h.min}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newKernelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernels",
		Short: "List, download, inspect and prune the kernels of a matrix",
	}
	cmd.AddCommand(newKernelsListCmd(), newKernelsPullCmd(), newKernelsInspectCmd(), newKernelsPruneCmd())
	return cmd
}

func matrixArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "matrix.yaml"
}

func newKernelsListCmd() *cobra.Command {
	var f kernelsFlags
	cmd := &cobra.Command{
		Use:   "list [matrix.yaml]",
		Short: "Show what each kernel × arch resolves to and whether it is cached (no download)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, lock, c, log, err := f.open(cmd, matrixArg(args))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KERNEL\tARCH\tSOURCE\tRELEASE\tCACHED\tRESOLVES TO")
			for _, t := range m.Targets() {
				pin := lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source)
				k, err := kernels.Resolve(cmd.Context(), t.Kernel.Name, t.Kernel.Source, t.Arch,
					kernels.Options{Cache: c, Client: offline, Pin: pin, Logger: offlineLog(log)})
				kind := t.Kernel.Source.Kind()
				if pin != nil {
					kind += " (locked)"
				}
				switch {
				case err == nil:
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\tyes\t%s\n", t.Kernel.Name, t.Arch, kind, k.Release, describeOrigin(k.Origin))
				case errors.Is(err, kernels.ErrUnreachable):
					fmt.Fprintf(w, "%s\t%s\t%s\t-\tno\t(run vmrunner kernels pull)\n", t.Kernel.Name, t.Arch, kind)
				default:
					fmt.Fprintf(w, "%s\t%s\t%s\t-\terror\t%v\n", t.Kernel.Name, t.Arch, kind, err)
				}
			}
			return w.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

// describeOrigin says in one line where a kernel comes from.
func describeOrigin(o kernels.Origin) string {
	switch {
	case o.Package != "":
		return o.Package + " " + o.Version
	case o.Digest != "":
		return o.URL
	case o.URL != "":
		return o.URL
	case len(o.Files) > 0:
		if o.Files[0].URL != "" {
			return o.Files[0].URL
		}
		return o.Files[0].Path
	}
	return o.Type
}

func newKernelsPullCmd() *cobra.Command {
	var f kernelsFlags
	cmd := &cobra.Command{
		Use:   "pull [matrix.yaml]",
		Short: "Download and prepare every kernel × arch of a matrix without running anything",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.logLevel = cmp(f.logLevel, "info")
			m, lock, c, log, err := f.open(cmd, matrixArg(args))
			if err != nil {
				return err
			}
			var errs []error
			for _, t := range m.Targets() {
				k, err := kernels.Resolve(cmd.Context(), t.Kernel.Name, t.Kernel.Source, t.Arch,
					kernels.Options{Cache: c, Refresh: f.refresh, Pin: lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source), Logger: log})
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", t.Label(), err))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-20s %s %s\n", t.Label(), k.Release, filepath.Dir(k.Image))
			}
			return kernelError(errors.Join(errs...))
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&f.refresh, "refresh", false, "re-read mirror indexes and tags instead of using cached resolutions")
	return cmd
}

func cmp(s, def string) string {
	if s == "warn" {
		return def
	}
	return s
}

// KernelReport is what `vmrunner kernels inspect` prints.
type KernelReport struct {
	Name        string            `json:"name,omitempty"`
	Path        string            `json:"path"`
	Release     string            `json:"release"`
	Arch        kernels.Arch      `json:"arch"`
	Format      string            `json:"format"`
	Compression string            `json:"compression"`
	PVH         bool              `json:"pvh"`
	BTF         bool              `json:"btf"`
	BTFFrom     string            `json:"btf_from,omitempty"`
	Config      map[string]string `json:"config,omitempty"`
	Modules     int               `json:"modules"`
	Origin      *kernels.Origin   `json:"origin,omitempty"`
}

// bpfOptions are the config options that decide what eBPF can do.
var bpfOptions = []string{
	"CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_BPF_JIT_ALWAYS_ON", "CONFIG_BPF_LSM",
	"CONFIG_BPF_EVENTS", "CONFIG_BPF_STREAM_PARSER", "CONFIG_CGROUP_BPF", "CONFIG_DEBUG_INFO_BTF",
	"CONFIG_DEBUG_INFO_BTF_MODULES", "CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS", "CONFIG_UPROBES",
	"CONFIG_UPROBE_EVENTS", "CONFIG_FTRACE_SYSCALLS", "CONFIG_FUNCTION_TRACER", "CONFIG_NET_CLS_BPF",
	"CONFIG_NET_ACT_BPF", "CONFIG_XDP_SOCKETS", "CONFIG_LWTUNNEL_BPF", "CONFIG_NETFILTER_XT_MATCH_BPF",
	"CONFIG_IKHEADERS", "CONFIG_PVH",
}

// inspectKernel reports on a resolved kernel.
func inspectKernel(k *kernels.Kernel) (KernelReport, error) {
	r := KernelReport{Name: k.Name, Path: k.Image, Release: k.Release, Arch: k.Arch}
	if k.Origin.Type != "" {
		o := k.Origin
		r.Origin = &o
	}
	info, err := kernels.Inspect(k.Image)
	if err != nil {
		return r, err
	}
	r.Format = info.Format
	if info.Format != kernels.FormatBzImage && info.Format != kernels.FormatELF && info.Format != kernels.FormatARM64Image {
		r.Format = formatOf(info.Arch) // compressed: the format inside
	}
	if r.Compression, err = kernels.Compression(k.Image); err != nil {
		return r, err
	}
	if k.Uncompressed != "" {
		if ui, err := kernels.Inspect(k.Uncompressed); err == nil {
			r.PVH = ui.PVH
		}
		if hasBTFSection(k.Uncompressed) {
			r.BTF, r.BTFFrom = true, ".BTF section of "+filepath.Base(k.Uncompressed)
		}
	}
	if k.Config != "" {
		cfg, err := readConfig(k.Config)
		if err != nil {
			return r, err
		}
		r.Config = make(map[string]string)
		for _, o := range bpfOptions {
			r.Config[o] = cmpOr(cfg[o], "n")
		}
		if !r.BTF && cfg["CONFIG_DEBUG_INFO_BTF"] == "y" {
			r.BTF, r.BTFFrom = true, "CONFIG_DEBUG_INFO_BTF=y"
		}
	}
	if k.Modules != "" {
		_ = filepath.WalkDir(k.Modules, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".ko") {
				r.Modules++
			}
			return nil
		})
	}
	return r, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func formatOf(a kernels.Arch) string {
	if a == kernels.ARM64 {
		return kernels.FormatARM64Image
	}
	return kernels.FormatELF
}

// hasBTFSection reports whether an ELF vmlinux carries .BTF. An arm64 raw
// Image is not an ELF: only the config can tell.
func hasBTFSection(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".BTF") != nil
}

// readConfig reads a kernel .config into option → value.
func readConfig(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	cfg := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = strings.Trim(v, `"`)
		}
	}
	return cfg, sc.Err()
}

func newKernelsInspectCmd() *cobra.Command {
	var (
		f      kernelsFlags
		matrix string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect NAME|PATH",
		Short: "Show a kernel's release, arch, compression, PVH, BTF, eBPF config options and module count",
		Long: `Inspect a kernel of the matrix by name (resolved from the cache, downloaded if
missing), a kernel directory of the cache (kernels/<sha>), or a kernel image file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := inspectTargets(cmd, &f, matrix, args[0])
			if err != nil {
				return kernelError(err)
			}
			var reps []KernelReport
			for _, k := range ks {
				r, err := inspectKernel(k)
				if err != nil {
					return kernelError(err)
				}
				reps = append(reps, r)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(reps)
			}
			for i, r := range reps {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				printReport(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&matrix, "matrix", "matrix.yaml", "matrix file naming the kernels")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// inspectTargets finds what arg names: a file, a cache directory or a
// kernel of the matrix.
func inspectTargets(cmd *cobra.Command, f *kernelsFlags, matrix, arg string) ([]*kernels.Kernel, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			var k kernels.Kernel
			data, err := os.ReadFile(filepath.Join(arg, "kernel.json"))
			if err != nil {
				return nil, fmt.Errorf("%w: %s is not a kernel directory of the cache (no kernel.json)", kernels.ErrBadInput, arg)
			}
			if err := json.Unmarshal(data, &k); err != nil {
				return nil, fmt.Errorf("read %s: %w", arg, err)
			}
			for _, p := range []*string{&k.Image, &k.Uncompressed, &k.Config, &k.Modules} {
				if *p != "" && !filepath.IsAbs(*p) {
					*p = filepath.Join(arg, *p)
				}
			}
			return []*kernels.Kernel{&k}, nil
		}
		info, err := kernels.Inspect(arg)
		if err != nil {
			return nil, err
		}
		k := &kernels.Kernel{Arch: info.Arch, Release: info.Release, Image: arg}
		if info.Format == kernels.FormatELF || info.Format == kernels.FormatARM64Image {
			k.Uncompressed = arg
		}
		return []*kernels.Kernel{k}, nil
	}
	m, lock, c, log, err := f.open(cmd, matrix)
	if err != nil {
		return nil, err
	}
	var ks []*kernels.Kernel
	for _, t := range m.Targets() {
		if t.Kernel.Name != arg {
			continue
		}
		k, err := kernels.Resolve(cmd.Context(), t.Kernel.Name, t.Kernel.Source, t.Arch,
			kernels.Options{Cache: c, Pin: lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Label(), err)
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		var names []string
		for _, k := range m.Kernels {
			names = append(names, k.Name)
		}
		return nil, fmt.Errorf("%w: %q is neither a file nor a kernel of %s (kernels: %s)", vmrunner.ErrBadMatrix, arg, matrix, strings.Join(names, ", "))
	}
	return ks, nil
}

func printReport(w io.Writer, r KernelReport) {
	yes := map[bool]string{true: "yes", false: "no"}
	title := r.Path
	if r.Name != "" {
		title = r.Name + "/" + string(r.Arch)
	}
	fmt.Fprintf(w, "%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  release\t%s\n  arch\t%s\n  format\t%s\n  compression\t%s\n  pvh\t%s\n", cmpOr(r.Release, "unknown"), r.Arch, r.Format, r.Compression, yes[r.PVH])
	btf := yes[r.BTF]
	if r.BTFFrom != "" {
		btf += " (" + r.BTFFrom + ")"
	}
	fmt.Fprintf(tw, "  btf\t%s\n  modules\t%d\n", btf, r.Modules)
	if r.Origin != nil {
		fmt.Fprintf(tw, "  source\t%s: %s\n", r.Origin.Type, describeOrigin(*r.Origin))
	}
	if r.Config != nil {
		keys := make([]string, 0, len(r.Config))
		for k := range r.Config {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%s\n", k, r.Config[k])
		}
	} else {
		fmt.Fprintf(tw, "  config\tnone\n")
	}
	tw.Flush()
}

func newKernelsPruneCmd() *cobra.Command {
	var (
		f      kernelsFlags
		all    bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "prune [matrix.yaml]",
		Short: "Remove cached kernels and downloads the matrix (and its lock) does not use",
		Long: `Remove from the cache every kernel and download that no kernel × arch of the
matrix resolves to (resolved from the cache only, with the lock when there is one),
and print the space freed. --all removes every cached kernel, download and build
directory instead.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keep map[string]bool
			var c *kernels.Cache
			if all {
				dir := f.cacheDir
				var err error
				if dir == "" {
					if dir, err = kernels.DefaultCacheDir(); err != nil {
						return err
					}
				}
				if c, err = kernels.OpenCache(dir); err != nil {
					return err
				}
			} else {
				m, lock, cache, log, err := f.open(cmd, matrixArg(args))
				if err != nil {
					return err
				}
				c, keep = cache, map[string]bool{}
				for _, t := range m.Targets() {
					k, err := kernels.Resolve(cmd.Context(), t.Kernel.Name, t.Kernel.Source, t.Arch,
						kernels.Options{Cache: c, Client: offline, Pin: lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source), Logger: offlineLog(log)})
					if err != nil {
						continue // not cached: nothing to keep
					}
					keep[k.SHA256] = true
					for _, fl := range k.Origin.Files {
						keep[fl.SHA256] = true
					}
				}
			}
			return prune(cmd.Context(), cmd.OutOrStdout(), c, keep, dryRun)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "remove every cached kernel and download")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	return cmd
}

// prune removes kernels/<sha> and blobs/sha256/<sha> not in keep (all of
// them when keep is nil), each under the cache lock that guards it.
func prune(ctx context.Context, w io.Writer, c *kernels.Cache, keep map[string]bool, dryRun bool) error {
	var freed, kept int64
	var removed, left int
	for _, sub := range []string{"kernels", "blobs/sha256"} {
		entries, err := os.ReadDir(filepath.Join(c.Dir, sub))
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(c.Dir, sub, e.Name())
			size := du(p)
			if keep != nil && keep[e.Name()] {
				kept += size
				left++
				continue
			}
			if !dryRun {
				unlock, err := c.Lock(ctx, "blob-"+strings.TrimPrefix(e.Name(), ".tmp-"))
				if err != nil {
					return err
				}
				err = os.RemoveAll(p)
				unlock()
				if err != nil {
					return fmt.Errorf("prune: %w", err)
				}
			}
			fmt.Fprintf(w, "%s %s (%s)\n", map[bool]string{false: "removed", true: "would remove"}[dryRun], filepath.Join(sub, e.Name()), mib(size))
			freed += size
			removed++
		}
	}
	if keep == nil { // --all: the out-of-tree build directories too
		p := filepath.Join(c.Dir, "build")
		if size := du(p); size > 0 {
			if !dryRun {
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("prune: %w", err)
				}
			}
			fmt.Fprintf(w, "%s build (%s)\n", map[bool]string{false: "removed", true: "would remove"}[dryRun], mib(size))
			freed += size
			removed++
		}
	}
	verb := "freed"
	if dryRun {
		verb = "would free"
	}
	fmt.Fprintf(w, "%d entries removed, %s %s; %d kept (%s)\n", removed, verb, mib(freed), left, mib(kept))
	return nil
}

func du(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
