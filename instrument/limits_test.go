package instrument

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestProgramSize keeps both builds under 4096 instructions, the limit of
// kernels before 5.2, which the bpf_probe_read build is for.
func TestProgramSize(t *testing.T) {
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"observe": loadObserve, "observeLegacy": loadObserveLegacy,
	} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for prog, p := range spec.Programs {
			if n := len(p.Instructions); n >= 4096 {
				t.Errorf("%s/%s: %d instructions, over the pre-5.2 limit of 4096", name, prog, n)
			}
		}
	}
}
