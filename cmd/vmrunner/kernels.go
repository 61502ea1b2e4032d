package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/fileutil"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"github.com/vmrunner/vmrunner/internal/vm"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/runner"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/results"
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

// add declares the flags.
func (f *kernelsFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	flagCacheDir(fl, &f.cacheDir)
	flagLogLevel(fl, &f.logLevel)
	fl.StringArrayVar(&f.arches, "arch", nil, "only this arch: x86_64 or arm64 (repeatable)")
}

// open loads the matrix (narrowed to --arch) and its provisioner: the cache
// and the lock.
func (f *kernelsFlags) open(cmd *cobra.Command, path string) (*matrix.Matrix, *runner.Provisioner, error) {
	log, err := newLogger(f.logLevel, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	arches, err := parseArches(f.arches)
	if err != nil {
		return nil, nil, err
	}
	m, err := matrix.LoadMatrix(path)
	if err != nil {
		return nil, nil, err
	}
	if m, err = m.Select(nil, arches, nil); err != nil {
		return nil, nil, err
	}
	p, err := runner.NewProvisioner(runner.Options{Matrix: m, CacheDir: f.cacheDir, Refresh: f.refresh, Log: log})
	if err != nil {
		return nil, nil, err
	}
	return m, p, nil
}

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
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, p, err := f.open(cmd, matrixArg(args))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KERNEL\tARCH\tSOURCE\tRELEASE\tCACHED\tRESOLVES TO")
			for _, t := range m.Targets() {
				k, err := p.Kernel(cmd.Context(), t, true)
				kind := t.Kernel.Source.Kind()
				if p.Lock.Pin(t.Kernel.Name, t.Arch, t.Kernel.Source) != nil {
					kind += " (locked)"
				}
				switch {
				case err == nil:
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\tyes\t%s\n", t.Kernel.Name, t.Arch, kind, k.Release, describeOrigin(k.Origin))
				case errors.Is(err, kernels.ErrNotCached):
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
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, p, err := f.open(cmd, matrixArg(args))
			if err != nil {
				return err
			}
			var errs []error
			for _, t := range m.Targets() {
				k, err := p.Kernel(cmd.Context(), t, false)
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

func newKernelsInspectCmd() *cobra.Command {
	var (
		f          kernelsFlags
		matrixFile string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "inspect NAME|PATH",
		Short: "Show a kernel's release, arch, compression, PVH, BTF, eBPF config options and module count",
		Long: `Inspect a kernel of the matrix by name (resolved from the cache, downloaded if
missing), a kernel directory of the cache (kernels/<sha>), or a kernel image file.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := inspectTargets(cmd, &f, matrixFile, args[0])
			if err != nil {
				return kernelError(err)
			}
			var reps []kernels.Description
			for _, k := range ks {
				r, err := kernels.Describe(k)
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
	cmd.Flags().StringVar(&matrixFile, "matrix", "matrix.yaml", "matrix file naming the kernels")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// inspectTargets finds what arg names: a file, a cache directory or a
// kernel of the matrix.
func inspectTargets(cmd *cobra.Command, f *kernelsFlags, matrixFile, arg string) ([]*kernels.Kernel, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			k, err := kernels.LoadDir(arg)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s is not a kernel directory of the cache (no kernel.json)", kernels.ErrBadInput, arg)
			}
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", arg, err)
			}
			return []*kernels.Kernel{k}, nil
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
	m, p, err := f.open(cmd, matrixFile)
	if err != nil {
		return nil, err
	}
	var ks []*kernels.Kernel
	for _, t := range m.Targets() {
		if t.Kernel.Name != arg {
			continue
		}
		k, err := p.Kernel(cmd.Context(), t, false)
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
		return nil, fmt.Errorf("%w: %q is neither a file nor a kernel of %s (kernels: %s)", matrix.ErrBadMatrix, arg, matrixFile, strings.Join(names, ", "))
	}
	return ks, nil
}

func printReport(w io.Writer, r kernels.Description) {
	yes := map[bool]string{true: "yes", false: "no"}
	title := r.Path
	if r.Name != "" {
		title = r.Name + "/" + string(r.Arch)
	}
	fmt.Fprintf(w, "%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  release\t%s\n  arch\t%s\n  format\t%s\n  compression\t%s\n  pvh\t%s\n", cmp.Or(r.Release, "unknown"), r.Arch, r.Format, r.Compression, yes[r.PVH])
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
		Short: "Remove cached kernels and downloads the matrix (and its lock) does not use, and leftovers of killed runs",
		Long: `Remove from the cache every kernel and download that no kernel × arch of the
matrix resolves to (resolved from the cache only, with the lock when there is one),
and every VM snapshot of another kernel or of another QEMU than the installed
one, and print the space freed. --all removes every cached kernel, download,
build directory, initramfs archive and snapshot instead.

Either way it removes what a vmrunner killed with SIGKILL left: half-written
downloads, kernels, initramfs archives and snapshots whose lock no live process holds, and
QEMU socket directories (<tmp>/vmr<digits>) older than 10 minutes whose sockets
no process has bound.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keep map[string]bool
			var c *kernels.Cache
			if all {
				var err error
				if c, err = kernels.OpenCache(f.cacheDir); err != nil {
					return err
				}
			} else {
				m, p, err := f.open(cmd, matrixArg(args))
				if err != nil {
					return err
				}
				c, keep = p.Cache, map[string]bool{}
				for _, t := range m.Targets() {
					k, err := p.Kernel(cmd.Context(), t, true)
					if err != nil {
						continue // not cached: nothing to keep
					}
					for _, key := range k.Keys() {
						keep[key] = true
					}
				}
			}
			return prune(cmd.Context(), cmd.OutOrStdout(), c, keep, dryRun)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "remove every cached kernel, download, initramfs archive and snapshot")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	return cmd
}

// prune removes what keep does not hold (everything when keep is nil) and
// prints what it removed and the space freed.
func prune(ctx context.Context, w io.Writer, c *kernels.Cache, keep map[string]bool, dryRun bool) error {
	res, err := c.Prune(ctx, keep, dryRun)
	if err == nil {
		var more []fileutil.Removal
		more, err = initramfs.Prune(c.Dir, keep == nil, dryRun)
		res.Removed = append(res.Removed, more...)
	}
	if err == nil {
		var more []fileutil.Removal
		more, err = qemu.PruneSocketDirs(dryRun)
		res.Removed = append(res.Removed, more...)
	}
	if err == nil {
		more, kept, keptBytes, serr := vm.PruneSnapshots(c.Dir, keep, dryRun)
		res.Removed = append(res.Removed, more...)
		res.Kept, res.KeptBytes, err = res.Kept+kept, res.KeptBytes+keptBytes, serr
	}
	verb, total := "removed", "freed"
	if dryRun {
		verb, total = "would remove", "would free"
	}
	for _, e := range res.Removed {
		fmt.Fprintf(w, "%s %s (%s)\n", verb, e.Path, mib(e.Size))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d entries removed, %s %s; %d kept (%s)\n", len(res.Removed), total, mib(res.Freed()), res.Kept, mib(res.KeptBytes))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
