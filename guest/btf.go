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

	"github.com/vmrunner/vmrunner/kernels/kconfig"
	"github.com/vmrunner/vmrunner/protocol"
)

// btfEnv says where the btf check looks; tests point it elsewhere.
type btfEnv struct {
	// Dir is the kernel's BTF directory, normally /sys/kernel/btf.
	Dir string
	// Configs are kernel config candidates, first existing one wins.
	Configs []string
}

func defaultBTFEnv() btfEnv {
	release, _ := uname()
	return btfEnv{
		Dir:     "/sys/kernel/btf",
		Configs: []string{"/boot/config-" + release, "/proc/config.gz"},
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

	vmlinux := filepath.Join(env.Dir, "vmlinux")
	if _, err := os.Stat(vmlinux); errors.Is(err, fs.ErrNotExist) {
		o.Status = protocol.StatusFail
		o.Message = "vmlinux BTF absent: kernel built without CONFIG_DEBUG_INFO_BTF"
		if d.Config["DEBUG_INFO_BTF"] == "y" {
			o.Message = "vmlinux BTF absent although CONFIG_DEBUG_INFO_BTF=y"
		}
		d.Missing = require
		return o, nil
	} else if err != nil {
		return o, fmt.Errorf("stat vmlinux BTF: %w", err)
	}
	d.VmlinuxPresent = true

	spec, err := btf.LoadSpec(vmlinux)
	if err != nil {
		o.Status, o.Message = protocol.StatusFail, fmt.Sprintf("parse vmlinux BTF: %v", err)
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
		o.Status, o.Message = protocol.StatusFail, "missing BTF types: "+strings.Join(d.Missing, ", ")
		return o, nil
	}
	o.Status = protocol.StatusPass
	o.Message = fmt.Sprintf("%d types, %d modules with BTF", d.Types, d.ModuleBTF)
	return o, nil
}
