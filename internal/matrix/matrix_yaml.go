package matrix

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
)

// The schema of matrix.yaml, for yamlstrict.Decode. Values that need more than a
// type check are types with their own UnmarshalYAML.
type (
	matrixYAML struct {
		Defaults defaultsYAML `yaml:"defaults"`
		Kernels  []kernelYAML `yaml:"kernels"`
		Checks   []yaml.Node  `yaml:"checks"` // decoded by matrixParser.checks
	}

	defaultsYAML struct {
		Memory       yamlSize     `yaml:"memory"`
		CPUs         yamlCPUs     `yaml:"cpus"`
		Timeout      yamlDuration `yaml:"timeout"`
		CheckTimeout yamlDuration `yaml:"check_timeout"`
		Snapshot     *bool        `yaml:"snapshot"`
	}

	kernelYAML struct {
		Name   string       `yaml:"name"`
		Arch   yamlArches   `yaml:"arch"`
		Source kernels.Spec `yaml:"source"`
		Memory yamlSize     `yaml:"memory"`
		CPUs   yamlCPUs     `yaml:"cpus"`
	}
)

var safeNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// isSafeName reports whether s can be used as one path element.
func isSafeName(s string) bool {
	return safeNameRE.MatchString(s) && s != "." && s != ".."
}

// yamlSize is a memory size in MiB, written 512M, 768MiB, 1G or 2GiB.
type yamlSize int

var sizeRE = regexp.MustCompile(`^([0-9]+) ?(?i:(m|mib|g|gib))$`)

// maxMemoryMiB bounds memory sizes, mostly to keep arithmetic from overflowing.
const maxMemoryMiB = 1 << 20

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *yamlSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", memoryWant, yamlstrict.Describe(n))
	}
	v, err := parseMemory(n.Value)
	if err != nil {
		return fmt.Errorf("%s, got %s%s", err, yamlstrict.Describe(n), errUnitHint(n.Value))
	}
	*s = yamlSize(v)
	return nil
}

const memoryWant = "expected a size like 512M or 1G"

// errUnitHint is the advice for a bare number.
func errUnitHint(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return " (add a unit)"
	}
	return ""
}

// ParseMemory reads a VM's memory size as matrix.yaml writes it (512M,
// 768MiB, 1G, 2GiB) into MiB, between 1M and the largest accepted; the
// error says what was expected, without the value.
func ParseMemory(s string) (int, error) {
	v, err := parseMemory(s)
	if err != nil {
		return 0, fmt.Errorf("%s, got %q%s", err, s, errUnitHint(s))
	}
	return v, nil
}

func parseMemory(s string) (int, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New(memoryWant)
	}
	v, err := strconv.Atoi(m[1])
	if strings.HasPrefix(strings.ToLower(m[2]), "g") {
		v *= 1024
	}
	if err != nil || v <= 0 || v > maxMemoryMiB {
		return 0, fmt.Errorf("%s, between 1M and %dG", memoryWant, maxMemoryMiB/1024)
	}
	return v, nil
}

// yamlDuration is a positive Go duration: 90s, 10m, 1h30m.
type yamlDuration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	const want = "expected a duration like 10m or 90s"
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", want, yamlstrict.Describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("%s, got %s", want, yamlstrict.Describe(n))
	}
	*d = yamlDuration(v)
	return nil
}

// yamlCPUs is a number of virtual CPUs.
type yamlCPUs int

// MaxCPUs bounds "cpus" (and exec's --cpus); QEMU's microvm and virt
// machines allow more, but a test VM with more is a typo.
const MaxCPUs = 64

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *yamlCPUs) UnmarshalYAML(n *yaml.Node) error {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil || v < 1 || v > MaxCPUs {
		return fmt.Errorf("expected a number of CPUs from 1 to %d, got %s", MaxCPUs, yamlstrict.Describe(n))
	}
	*c = yamlCPUs(v)
	return nil
}

// yamlArches is a list of architectures, or a single one as a scalar.
type yamlArches []kernels.Arch

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *yamlArches) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return fmt.Errorf("expected at least one arch (%s)", joinArches(kernels.Arches))
		}
		items = n.Content
	default:
		return fmt.Errorf("expected an arch or a list of arches (%s), got %s", joinArches(kernels.Arches), yamlstrict.Describe(n))
	}

	var arches []kernels.Arch
	var errs []error
	for _, item := range items {
		item = yamlstrict.Resolve(item)
		if item.Kind != yaml.ScalarNode {
			errs = append(errs, yamlstrict.ErrorAt(item, "expected an arch (%s), got %s", joinArches(kernels.Arches), yamlstrict.Describe(item)))
			continue
		}
		arch, err := kernels.ParseArch(item.Value)
		switch {
		case err != nil:
			errs = append(errs, yamlstrict.ErrorAt(item, "%v", err))
		case slices.Contains(arches, arch):
			errs = append(errs, yamlstrict.ErrorAt(item, "arch %s listed twice", arch))
		default:
			arches = append(arches, arch)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*a = arches
	return nil
}
