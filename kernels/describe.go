package kernels

import (
	"debug/elf"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/kernels/kconfig"
)

// Description is what `vmrunner kernels inspect` shows of a kernel.
type Description struct {
	Name        string `json:"name,omitempty"`
	Path        string `json:"path"`
	Release     string `json:"release"`
	Arch        Arch   `json:"arch"`
	Format      string `json:"format"`      // of the kernel inside a compressed image
	Compression string `json:"compression"` // "none", "xz", "gzip"...
	PVH         bool   `json:"pvh"`
	BTF         bool   `json:"btf"`
	BTFFrom     string `json:"btf_from,omitempty"` // what says so
	// Config has kconfig.BPFOptions with their CONFIG_ prefix, "n" for
	// those unset; nil without a config.
	Config  map[string]string `json:"config,omitempty"`
	Modules int               `json:"modules"` // module files (.ko, .ko.xz...)
	Origin  *Origin           `json:"origin,omitempty"`
}

// Describe inspects a resolved kernel: its image, the uncompressed image
// (PVH entry, .BTF section), its config and its modules.
func Describe(k *Kernel) (Description, error) {
	d := Description{Name: k.Name, Path: k.Image, Release: k.Release, Arch: k.Arch}
	if k.Origin.Type != "" {
		o := k.Origin
		d.Origin = &o
	}
	info, err := Inspect(k.Image)
	if err != nil {
		return d, err
	}
	d.Format = info.Format
	if info.Format != FormatBzImage && info.Format != FormatELF && info.Format != FormatARM64Image {
		// A compressed image: say what is inside.
		d.Format = FormatELF
		if info.Arch == ARM64 {
			d.Format = FormatARM64Image
		}
	}
	if d.Compression, err = Compression(k.Image); err != nil {
		return d, err
	}
	if k.Uncompressed != "" {
		if ui, err := Inspect(k.Uncompressed); err == nil {
			d.PVH = ui.PVH
		}
		if HasBTFSection(k.Uncompressed) {
			d.BTF, d.BTFFrom = true, ".BTF section of "+filepath.Base(k.Uncompressed)
		}
	}
	if k.Config != "" {
		cfg, err := kconfig.ReadFile(k.Config)
		if err != nil {
			return d, err
		}
		d.Config = make(map[string]string, len(kconfig.BPFOptions))
		for _, o := range kconfig.BPFOptions {
			d.Config["CONFIG_"+o] = cfg.Get(o)
		}
		if !d.BTF && cfg.Get("DEBUG_INFO_BTF") == "y" {
			d.BTF, d.BTFFrom = true, "CONFIG_DEBUG_INFO_BTF=y"
		}
	}
	if !d.BTF && k.BTF != "" {
		d.BTF, d.BTFFrom = true, "external BTF file "+filepath.Base(k.BTF)
	}
	if k.Modules != "" {
		_ = filepath.WalkDir(k.Modules, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.Contains(e.Name(), ".ko") {
				d.Modules++
			}
			return nil
		})
	}
	return d, nil
}

// HasBTFSection reports whether the ELF vmlinux at path carries the kernel's
// own BTF (.BTF). An arm64 raw Image is not an ELF file: only its config can
// tell.
func HasBTFSection(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".BTF") != nil
}
