package bpfobject

import "testing"

func TestParseName(t *testing.T) {
	for base, want := range map[string]Name{
		"probes.o":                {Object: "probes"},
		"bpf_x86_bpfel.o":         {Object: "bpf", Target: "x86", Arch: "x86_64"},
		"bpf_tp_arm64_bpfel.o":    {Object: "bpf_tp", Target: "arm64", Arch: "arm64"},
		"kprobe_args_x86_bpfeb.o": {Object: "kprobe_args", Target: "x86", Arch: "x86_64"},
		"flows_riscv_bpfel.o":     {Object: "flows", Target: "riscv"},
		"tracer_bpfel.o":          {Object: "tracer_bpfel"},
		"my_custom_bpfel.o":       {Object: "my_custom_bpfel"}, // "custom" is no arch
		"_x86_bpfel.o":            {Object: "_x86_bpfel"},
		"x86_bpfel.o":             {Object: "x86_bpfel"},
		"wrong_arch.o":            {Object: "wrong_arch"},
		"kprobe_args_arm64_bpfel": {Object: "kprobe_args", Target: "arm64", Arch: "arm64"},
	} {
		if got := ParseName(base); got != want {
			t.Errorf("ParseName(%q) = %+v, want %+v", base, got, want)
		}
	}
}
