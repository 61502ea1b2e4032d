package guest

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

// bpfConfig lists the kernel config options that matter to eBPF software,
// without their CONFIG_ prefix.
var bpfConfig = []string{
	"BPF", "BPF_SYSCALL", "BPF_JIT", "BPF_JIT_ALWAYS_ON", "HAVE_EBPF_JIT",
	"BPF_EVENTS", "DEBUG_INFO_BTF", "DEBUG_INFO_BTF_MODULES",
	"KPROBES", "KPROBE_EVENTS", "UPROBES", "UPROBE_EVENTS",
	"TRACEPOINTS", "FTRACE_SYSCALLS", "BPF_LSM", "CGROUP_BPF",
	"NET_CLS_BPF", "NET_ACT_BPF", "XDP_SOCKETS", "BPF_STREAM_PARSER",
	"LWTUNNEL_BPF",
}

// parseKconfig reads a kernel .config. Options are returned without their
// CONFIG_ prefix; "# CONFIG_X is not set" gives "n", quotes are kept.
func parseKconfig(r io.Reader) (map[string]string, error) {
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "# CONFIG_"); ok {
			if name, ok = strings.CutSuffix(name, " is not set"); ok {
				cfg[name] = "n"
			}
			continue
		}
		if name, ok := strings.CutPrefix(line, "CONFIG_"); ok {
			if k, v, ok := strings.Cut(name, "="); ok {
				cfg[k] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	return cfg, nil
}

// selectConfig returns the options of names from cfg, "n" for those absent.
func selectConfig(cfg map[string]string, names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, ok := cfg[n]
		if !ok {
			v = "n"
		}
		out[n] = v
	}
	return out
}

// readKconfig reads the first config file of paths that exists; a name
// ending in .gz is decompressed (/proc/config.gz). It returns the path read,
// or fs.ErrNotExist when none exists.
func readKconfig(paths []string) (map[string]string, string, error) {
	for _, p := range paths {
		cfg, err := readKconfigFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", p, err)
		}
		return cfg, p, nil
	}
	return nil, "", fs.ErrNotExist
}

func readKconfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("open gzip: %w", err)
		}
		defer gz.Close()
		r = gz
	}
	return parseKconfig(r)
}
