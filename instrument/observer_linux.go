package instrument

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// flagBrokenStatus is CONFIG_BROKEN_STATUS in bpf/observe.c.
const flagBrokenStatus = 1

// hooks are the syscall tracepoints attached, by program name.
var hooks = []struct{ prog, group, name string }{
	{"enter_write", "syscalls", "sys_enter_write"},
	{"enter_sendto", "syscalls", "sys_enter_sendto"},
}

// Observer is the loaded and attached instrumentation.
type Observer struct {
	coll  *ebpf.Collection
	links []link.Link
	info  Info
}

// Load loads the programs into the kernel, configures them and attaches
// them. It uses bpf_probe_read_user when the kernel has it and
// bpf_probe_read otherwise.
func Load(cfg Config) (_ *Observer, err error) {
	spec, probeRead, err := chooseSpec(cfg.Legacy)
	if err != nil {
		return nil, err
	}
	// Kernel BTF for the CO-RE relocations, loaded apart so that its cost
	// (most of the startup time under emulation) is reported on its own.
	start := time.Now()
	kernelTypes := cfg.KernelTypes
	if kernelTypes == nil {
		if kernelTypes, err = btf.LoadKernelSpec(); err != nil {
			return nil, fmt.Errorf("load kernel BTF: %w", err)
		}
	}
	btfTime := time.Since(start)
	start = time.Now()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kernelTypes},
	})
	if err != nil {
		return nil, fmt.Errorf("load instrumentation (%s): %w", probeRead, err)
	}
	o := &Observer{coll: coll, info: Info{ProbeRead: probeRead, KernelBTF: btfTime, Load: time.Since(start)}}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()

	for _, p := range cfg.Ports {
		v := observePortInfo{Proto: uint8(p.Protocol), Role: uint8(p.Role)}
		if err := coll.Maps["ports"].Put(p.Port, v); err != nil {
			return nil, fmt.Errorf("register port %d: %w", p.Port, err)
		}
	}
	for _, tgid := range cfg.ServerTGIDs {
		if err := coll.Maps["servers"].Put(tgid, uint8(1)); err != nil {
			return nil, fmt.Errorf("register server process %d: %w", tgid, err)
		}
	}
	settings := observeSettings{Tgid: cfg.TGID}
	if cfg.BrokenStatus {
		settings.Flags |= flagBrokenStatus
	}
	if err := coll.Maps["config"].Put(uint32(0), settings); err != nil {
		return nil, fmt.Errorf("configure instrumentation: %w", err)
	}

	start = time.Now()
	defer func() { o.info.Attach = time.Since(start) }()
	for _, h := range hooks {
		l, err := link.Tracepoint(h.group, h.name, coll.Programs[h.prog], nil)
		if err != nil {
			return nil, fmt.Errorf("attach %s:%s: %w", h.group, h.name, err)
		}
		o.links = append(o.links, l)
		o.info.Hooks = append(o.info.Hooks, "tracepoint/"+h.group+"/"+h.name)
		o.info.Programs = append(o.info.Programs, h.prog)
	}
	return o, nil
}

// chooseSpec picks the build whose helpers the kernel has.
func chooseSpec(legacy bool) (*ebpf.CollectionSpec, string, error) {
	err := features.HaveProgramHelper(ebpf.TracePoint, asm.FnProbeReadUser)
	if legacy {
		err = ebpf.ErrNotSupported
	}
	switch {
	case err == nil:
		spec, err := loadObserve()
		return spec, "bpf_probe_read_user", err
	case errors.Is(err, ebpf.ErrNotSupported):
		spec, err := loadObserveLegacy()
		return spec, "bpf_probe_read", err
	default:
		return nil, "", fmt.Errorf("probe bpf_probe_read_user: %w", err)
	}
}

// Info says which hooks and helpers are in use.
func (o *Observer) Info() Info { return o.info }

// Counts returns the counters, sorted.
func (o *Observer) Counts() ([]Count, error) {
	var (
		k      observeKey
		n      uint64
		counts []Count
	)
	it := o.coll.Maps["counts"].Iterate()
	for it.Next(&k, &n) {
		counts = append(counts, Count{
			Protocol: Protocol(k.Proto), Kind: Kind(k.Kind), Role: Role(k.Role),
			Status: k.Status, Op: cString(k.Op[:]), N: n,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read counts: %w", err)
	}
	slices.SortFunc(counts, func(a, b Count) int {
		return cmpCount(a, b)
	})
	return counts, nil
}

// ProgramStats is the kernel's run-time accounting of one program, present
// while run-time statistics are enabled (EnableStats).
type ProgramStats struct {
	Name     string        `json:"name"`
	RunCount uint64        `json:"run_count"`
	Runtime  time.Duration `json:"runtime_ns"`
}

// Stats returns the programs' run counts and run times; ok is false when
// the kernel does not report them.
func (o *Observer) Stats() (stats []ProgramStats, ok bool) {
	for _, name := range o.info.Programs {
		s, err := o.coll.Programs[name].Stats()
		if err != nil {
			return nil, false
		}
		stats = append(stats, ProgramStats{Name: name, RunCount: s.RunCount, Runtime: s.Runtime})
	}
	return stats, true
}

// EnableStats turns on the kernel's BPF run-time statistics
// (kernel.bpf_stats_enabled) until the returned Closer is closed: through
// BPF_ENABLE_STATS (5.8+), else by writing the sysctl (5.1+). how says
// which; err is set when neither works.
func EnableStats() (closer io.Closer, how string, err error) {
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err == nil {
		return c, "BPF_ENABLE_STATS", nil
	}
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	if werr := os.WriteFile(sysctl, []byte("1"), 0); werr != nil {
		return nil, "", fmt.Errorf("enable BPF stats: %w", errors.Join(err, werr))
	}
	return sysctlOff(sysctl), "sysctl kernel.bpf_stats_enabled", nil
}

type sysctlOff string

func (s sysctlOff) Close() error { return os.WriteFile(string(s), []byte("0"), 0) }

// Close detaches and unloads everything.
func (o *Observer) Close() error {
	var errs []error
	for _, l := range o.links {
		errs = append(errs, l.Close())
	}
	o.links = nil
	if o.coll != nil {
		o.coll.Close()
		o.coll = nil
	}
	return errors.Join(errs...)
}

// Memlock is the kernel memory charged to the programs and maps, in bytes;
// ok is false when the kernel does not report it.
func (o *Observer) Memlock() (total uint64, ok bool) {
	ok = true
	for _, p := range o.coll.Programs {
		info, err := p.Info()
		if err != nil {
			return 0, false
		}
		n, has := info.Memlock()
		ok = ok && has
		total += n
	}
	for _, m := range o.coll.Maps {
		info, err := m.Info()
		if err != nil {
			return 0, false
		}
		n, has := info.Memlock()
		ok = ok && has
		total += n
	}
	return total, ok
}
