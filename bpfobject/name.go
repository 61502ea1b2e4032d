package bpfobject

import "strings"

// bpf2goArches maps the Linux arch names bpf2go writes into object file
// names (<stem>_<arch>_bpfel.o) to vmrunner's arch names; arches vmrunner
// does not run map to "".
var bpf2goArches = map[string]string{
	"x86":       "x86_64",
	"arm64":     "arm64",
	"arm":       "",
	"loongarch": "",
	"mips":      "",
	"powerpc":   "",
	"riscv":     "",
	"s390":      "",
}

// Name is what an object's file name says about it.
type Name struct {
	// Object is the name results use: the file name without ".o" and,
	// for a per-arch bpf2go build, without "_<arch>_bpfel", so that both
	// arches' builds report under one name.
	Object string
	// Target is the Linux arch of a per-arch bpf2go build ("x86",
	// "arm64", "riscv", ...); empty for any other object.
	Target string
	// Arch is vmrunner's name for Target (x86_64 or arm64), empty when
	// Target is empty or an arch vmrunner does not run.
	Arch string
}

// ParseName reads base, an object's file name: bpf2go names its objects
// <stem>_<arch>_bpfel.o or <stem>_<arch>_bpfeb.o when built per arch, and
// <stem>_bpfel.o otherwise.
func ParseName(base string) Name {
	stem := strings.TrimSuffix(base, ".o")
	n := Name{Object: stem}
	for _, order := range []string{"_bpfel", "_bpfeb"} {
		rest, ok := strings.CutSuffix(stem, order)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '_')
		if i <= 0 {
			return n
		}
		arch, known := bpf2goArches[rest[i+1:]]
		if !known {
			return n
		}
		return Name{Object: rest[:i], Target: rest[i+1:], Arch: arch}
	}
	return n
}
