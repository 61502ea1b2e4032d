package kconfig

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Option is one line of a .config or a config fragment.
type Option struct {
	Name  string // without CONFIG_
	Value string // "y", "m", "n" for "is not set", a number, a quoted string
}

// Config maps option names (without CONFIG_) to their values.
type Config map[string]string

// maxLine bounds one line: a .config line is a few hundred bytes at most.
const maxLine = 1 << 20

// ParseOptions reads the options of a .config or fragment in file order.
func ParseOptions(r io.Reader) ([]Option, error) {
	var opts []Option
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# CONFIG_"); ok {
			if name, ok := strings.CutSuffix(rest, " is not set"); ok {
				opts = append(opts, Option{name, "n"})
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "CONFIG_"); ok {
			if name, value, ok := strings.Cut(rest, "="); ok {
				opts = append(opts, Option{name, value})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	return opts, nil
}

// Parse reads a .config into a Config.
func Parse(r io.Reader) (Config, error) {
	opts, err := ParseOptions(r)
	if err != nil {
		return nil, err
	}
	cfg := make(Config, len(opts))
	for _, o := range opts {
		cfg[o.Name] = o.Value
	}
	return cfg, nil
}

// ReadFile reads a .config file; a name ending in .gz is decompressed
// (/proc/config.gz). A missing file is an error wrapping fs.ErrNotExist.
func ReadFile(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: open gzip: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	cfg, err := Parse(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return cfg, nil
}

// ReadFirst reads the first of paths that exists and returns it with the
// path read, or an error wrapping fs.ErrNotExist when none exists. A file
// that exists but does not read (a corrupt config.gz) is an error, not a
// reason to try the next.
func ReadFirst(paths []string) (Config, string, error) {
	for _, p := range paths {
		cfg, err := ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return cfg, p, nil
	}
	return nil, "", fs.ErrNotExist
}

// Get returns the value of name, "n" when the config does not have it.
func (c Config) Get(name string) string {
	if v, ok := c[name]; ok {
		return v
	}
	return "n"
}

// Select returns the values of names, "n" for those the config lacks.
func (c Config) Select(names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = c.Get(n)
	}
	return out
}

// BPFOptions are the options that decide what eBPF software can do on a
// kernel: what the btf check reports and `vmrunner kernels inspect` shows.
var BPFOptions = []string{
	"BPF", "BPF_SYSCALL", "BPF_JIT", "BPF_JIT_ALWAYS_ON", "HAVE_EBPF_JIT", "BPF_LSM",
	"BPF_EVENTS", "BPF_STREAM_PARSER", "CGROUP_BPF", "DEBUG_INFO_BTF", "DEBUG_INFO_BTF_MODULES",
	"KPROBES", "KPROBE_EVENTS", "UPROBES", "UPROBE_EVENTS", "TRACEPOINTS", "FTRACE_SYSCALLS",
	"FUNCTION_TRACER", "NET_CLS_BPF", "NET_ACT_BPF", "XDP_SOCKETS", "LWTUNNEL_BPF",
	"NETFILTER_XT_MATCH_BPF", "IKHEADERS", "PVH",
}
