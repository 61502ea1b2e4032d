// Package kernelbtf finds the kernel types the guest's checks work with:
// the kernel's own BTF (/sys/kernel/btf/vmlinux), or the external BTF the
// host packed (protocol.ExternalBTFPath) when the kernel has none or the
// matrix asks for it in place of the kernel's. The btf check reports which;
// the verifier and workload checks load CO-RE programs against it
// (ebpf.ProgramOptions.KernelTypes).
package kernelbtf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

var (
	once   sync.Once
	spec   *btf.Spec
	choice Choice
	errs   error
)

// KernelTypes returns the external BTF's types when the checks must use
// them, else nil: cilium/ebpf then reads the kernel's own. The file is read
// once per process.
func KernelTypes() (*btf.Spec, Choice, error) {
	once.Do(func() {
		choice, errs = Default.Choose()
		if errs != nil || choice.External == "" {
			return
		}
		spec, errs = btf.LoadSpec(choice.Path)
		if errs != nil {
			errs = fmt.Errorf("load %s: %w", choice.Describe(), errs)
		}
	})
	return spec, choice, errs
}
