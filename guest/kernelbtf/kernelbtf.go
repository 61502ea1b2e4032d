// Package kernelbtf finds the kernel types the guest's checks work with:
// the kernel's own BTF (/sys/kernel/btf/vmlinux), or the external BTF the
// host packed (protocol.ExternalBTFPath) when the kernel has none or the
// matrix asks for it in place of the kernel's. The btf check reports which;
// the verifier and workload checks load CO-RE programs against it
// (ebpf.ProgramOptions.KernelTypes). Either is parsed once per agent, not
// once per plan: the kernel does not change while the agent runs.
package kernelbtf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/protocol"
)

// Env says where to look; tests point it elsewhere.
type Env struct {
	Vmlinux  string // the kernel's own BTF
	External string // the external BTF
	Info     string // its protocol.ExternalBTFInfo
}

// Default is where the kernel and the host put them.
var Default = Env{Vmlinux: "/sys/kernel/btf/vmlinux", External: protocol.ExternalBTFPath, Info: protocol.ExternalBTFInfoPath}

// Choice is the BTF to use and why.
type Choice struct {
	// VmlinuxPresent says whether the kernel has BTF of its own.
	VmlinuxPresent bool
	// External is set when the external BTF is the one to use: where it
	// came from (protocol.ExternalBTFInfo.From).
	External string
	// Replaces is set when the external BTF is used although the kernel
	// has its own, because the matrix gave it.
	Replaces bool
	// Path is the file to load: Vmlinux or External, "" when there is none.
	Path string
}

// Describe says where the types come from, for messages.
func (c Choice) Describe() string {
	switch {
	case c.External != "" && c.Replaces && c.VmlinuxPresent:
		return "external BTF from " + c.External + " (in place of the kernel's own, as the matrix says)"
	case c.External != "":
		return "external BTF from " + c.External
	case c.VmlinuxPresent:
		return "vmlinux BTF"
	}
	return "no BTF"
}

// Choose decides which BTF to use, without loading it.
func (e Env) Choose() (Choice, error) {
	var c Choice
	if _, err := os.Stat(e.Vmlinux); err == nil {
		c.VmlinuxPresent, c.Path = true, e.Vmlinux
	} else if !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("stat vmlinux BTF: %w", err)
	}
	if _, err := os.Stat(e.External); errors.Is(err, fs.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return c, fmt.Errorf("stat external BTF: %w", err)
	}
	var info protocol.ExternalBTFInfo
	data, err := os.ReadFile(e.Info)
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err != nil {
		return c, fmt.Errorf("read external BTF info: %w", err)
	}
	if c.VmlinuxPresent && !info.Replaces {
		return c, nil // shipped with the kernel, which has its own
	}
	c.External, c.Replaces, c.Path = info.From, info.Replaces, e.External
	if c.External == "" {
		c.External = e.External
	}
	return c, nil
}

// external is the external BTF, read once per process.
var external struct {
	once      sync.Once
	spec      *btf.Spec
	choice    Choice
	chooseErr error
	loadErr   error
}

func loadExternal() {
	external.once.Do(func() {
		external.choice, external.chooseErr = Default.Choose()
		if external.chooseErr != nil || external.choice.External == "" {
			return
		}
		external.spec, external.loadErr = btf.LoadSpec(external.choice.Path)
	})
}

// KernelTypes returns the external BTF's types when the checks must use
// them, else nil: cilium/ebpf then reads the kernel's own. The file is read
// once per process.
func KernelTypes() (*btf.Spec, Choice, error) {
	loadExternal()
	switch {
	case external.chooseErr != nil:
		return nil, external.choice, external.chooseErr
	case external.loadErr != nil:
		return nil, external.choice, fmt.Errorf("load %s: %w", external.choice.Describe(), external.loadErr)
	}
	return external.spec, external.choice, nil
}

// Load returns the types of the BTF c chose: when c is a choice of Default,
// the ones this process parsed already (the external BTF of KernelTypes,
// the kernel's own of Cache), parsed on first use; else c.Path read anew.
func Load(c Choice) (*btf.Spec, error) {
	switch {
	case c.Path == "":
		return nil, errors.New("no BTF to load")
	case c.External == "" && c.Path == Default.Vmlinux:
		return Cache().Kernel()
	case c.External != "" && c.Path == Default.External:
		loadExternal()
		if external.chooseErr == nil && external.choice.Path == c.Path {
			return external.spec, external.loadErr
		}
	}
	return btf.LoadSpec(c.Path)
}

// Cache returns the btf.Cache the checks share for the kernel's own BTF and
// that of its modules (cilium/ebpf's CO-RE relocations, kfuncs, attach
// targets): the kernel's types are read and indexed by name once per agent
// (170 ms for Debian's 6.1 under TCG), and the types a relocation looked at
// stay decoded, instead of all of it again for each plan of repro --watch.
// A btf.Cache lists the modules with BTF only once, so when the modules in
// /sys/kernel/btf are not those it was made for (a check loaded one since),
// Cache returns a new one.
func Cache() *btf.Cache {
	return defaultCache.get()
}

var defaultCache = &sharedCache{dir: "/sys/kernel/btf"}

// sharedCache is a btf.Cache kept while the entries of dir (vmlinux and
// the modules with BTF) stay the same.
type sharedCache struct {
	dir     string
	mu      sync.Mutex
	cache   *btf.Cache
	entries []string
}

func (s *sharedCache) get() *btf.Cache {
	entries := s.list()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil || !slices.Equal(entries, s.entries) {
		s.cache, s.entries = btf.NewCache(), entries
	}
	return s.cache
}

// list lists dir's entries, sorted (os.ReadDir sorts); nil when it cannot
// be read, as on a kernel without BTF.
func (s *sharedCache) list() []string {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Warm parses and decodes every type of the BTF the checks will use (the
// kernel's own, or the external BTF Default chooses), so that the first
// check to need it finds it ready. The agent calls it before it says ready:
// a snapshot taken then holds the decoded types, and every VM restored from
// it skips the parse (1.2-1.5 s for a Debian kernel under TCG) instead of
// paying it in its btf check. It returns the number of types and an error
// only for the caller to log: a check that needs the BTF reports the same
// error itself.
func Warm() (int, error) {
	c, err := Default.Choose()
	if err != nil {
		return 0, err
	}
	if c.Path == "" {
		return 0, nil // no BTF at all: nothing to warm
	}
	spec, err := Load(c)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, err := range spec.All() {
		if err != nil {
			return n, fmt.Errorf("decode %s: %w", c.Describe(), err)
		}
		n++
	}
	return n, nil
}
