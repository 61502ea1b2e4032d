package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/vmrunner/vmrunner/guest/kernelbtf"
	"github.com/vmrunner/vmrunner/kernels/kconfig"
	"github.com/vmrunner/vmrunner/protocol"
)

// btfEnv says where the btf check looks; tests point it elsewhere.
type btfEnv struct {
	// Dir is the kernel's BTF directory, normally /sys/kernel/btf.
	Dir string
	// Configs are kernel config candidates, first existing one wins.
	Configs []string
	// External is where the host packs external BTF (its Vmlinux is
	// Dir/vmlinux).
	External kernelbtf.Env
	// Load parses the chosen BTF; nil reads its file (btf.LoadSpec).
	Load func(kernelbtf.Choice) (*btf.Spec, error)
}

func defaultBTFEnv() btfEnv {
	release, _ := uname()
	return btfEnv{
		Dir:      "/sys/kernel/btf",
		Configs:  []string{"/boot/config-" + release, "/proc/config.gz"},
		External: kernelbtf.Default,
		// The agent's one parse of it, which the verifier's CO-RE
		// relocations and the features probes use too: after this check
		// every type is decoded there.
		Load: kernelbtf.Load,
	}
}

func init() { agentChecks.Add(protocol.BTFCheck.Def(), checkBTF) }

// checkBTF is the "btf" check: is vmlinux BTF there, does it parse, and does
// it have the types the software under test needs? It also reports the
// BPF-related kernel config, so a failure can be explained.
func checkBTF(ctx context.Context, params json.RawMessage) (Outcome, error) {
	return defaultBTFEnv().check(ctx, params)
}

func (env btfEnv) check(ctx context.Context, params json.RawMessage) (Outcome, error) {
	p, err := protocol.BTFCheck.Params(params)
	if err != nil {
		return Outcome{}, err
	}
	require := p.Require

	d := &protocol.BTFDetails{Found: []string{}, Missing: []string{}}
	o := Outcome{Details: d}

	// Config first: it explains what follows.
	cfg, source, err := kconfig.ReadFirst(env.Configs)
	switch {
	case err == nil:
		d.Config, d.ConfigSource = cfg.Select(kconfig.BPFOptions), source
	case !errors.Is(err, fs.ErrNotExist):
		return o, fmt.Errorf("read kernel config: %w", err)
	}

	modules, err := os.ReadDir(env.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return o, fmt.Errorf("list %s: %w", env.Dir, err)
	}
	for _, m := range modules {
		if m.Name() != "vmlinux" {
			d.ModuleBTF++
		}
	}

	ext := env.External
	ext.Vmlinux = filepath.Join(env.Dir, "vmlinux")
	choice, err := ext.Choose()
	if err != nil {
		return o, err
	}
	d.VmlinuxPresent = choice.VmlinuxPresent
	d.External = choice.External
	// prefix says where the types come from, before the figures.
	prefix := ""
	switch {
	case choice.External != "" && choice.VmlinuxPresent:
		prefix = "vmlinux BTF present, not used; external BTF from " + choice.External + " as the matrix says: "
	case choice.External != "":
		prefix = "vmlinux BTF absent; external BTF from " + choice.External + ": "
	case !choice.VmlinuxPresent:
		o.Status = protocol.StatusFail
		o.Message = "vmlinux BTF absent: kernel built without CONFIG_DEBUG_INFO_BTF, and no external BTF (give one with the source's btf option)"
		if d.Config["DEBUG_INFO_BTF"] == "y" {
			o.Message = "vmlinux BTF absent although CONFIG_DEBUG_INFO_BTF=y, and no external BTF"
		}
		d.Missing = require
		return o, nil
	}

	load := env.Load
	if load == nil {
		load = func(c kernelbtf.Choice) (*btf.Spec, error) { return btf.LoadSpec(c.Path) }
	}
	spec, err := load(choice)
	if err != nil {
		o.Status, o.Message = protocol.StatusFail, fmt.Sprintf("%sparse %s: %v", prefix, choice.Describe(), err)
		d.Missing = require
		return o, nil
	}
	for _, err := range spec.All() {
		if err != nil {
			o.Status, o.Message = protocol.StatusFail, fmt.Sprintf("iterate vmlinux BTF: %v", err)
			return o, nil
		}
		d.Types++
		if d.Types%4096 == 0 && ctx.Err() != nil {
			return o, ctx.Err()
		}
	}

	for _, name := range require {
		_, err := spec.AnyTypesByName(name)
		switch {
		case err == nil:
			d.Found = append(d.Found, name)
		case errors.Is(err, btf.ErrNotFound):
			d.Missing = append(d.Missing, name)
		default:
			return o, fmt.Errorf("look up %s: %w", name, err)
		}
	}
	if len(d.Missing) > 0 {
		o.Status, o.Message = protocol.StatusFail, fmt.Sprintf("%s%d types; missing BTF types: %s", prefix, d.Types, strings.Join(d.Missing, ", "))
		if prefix == "" {
			o.Message = "missing BTF types: " + strings.Join(d.Missing, ", ")
		}
		return o, nil
	}
	o.Status = protocol.StatusPass
	o.Message = fmt.Sprintf("%d types, %d modules with BTF", d.Types, d.ModuleBTF)
	if prefix != "" {
		o.Message = fmt.Sprintf("%s%d types; has %s", prefix, d.Types, strings.Join(d.Found, ", "))
	}
	return o, nil
}
