package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// tableProber answers probes from sets: present features are supported,
// broken ones fail with an error, everything else is unsupported.
type tableProber struct {
	present map[string]bool
	broken  map[string]bool
}

func (p tableProber) answer(name string) error {
	switch {
	case p.broken[name]:
		return errors.New("probe exploded")
	case p.present[name]:
		return nil
	}
	return fmt.Errorf("%s: %w", name, ebpf.ErrNotSupported)
}

func (p tableProber) programType(t ebpf.ProgramType) error { return p.answer(t.String()) }
func (p tableProber) mapType(t ebpf.MapType) error         { return p.answer(t.String()) }
func (p tableProber) helper(t ebpf.ProgramType, h asm.BuiltinFunc) error {
	if p.present[h.String()+"/"+t.String()] {
		return nil
	}
	if h == asm.FnGetFuncIp {
		return fmt.Errorf("func bpf_get_func_ip#173 not supported for program type: %w", unix.EOPNOTSUPP)
	}
	return p.answer(h.String() + "/" + t.String())
}

func TestFeaturesCheck(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config")
	writeTestFile(t, config, "CONFIG_BPF_LSM=y\n# CONFIG_BPF_LIRC_MODE2 is not set\n")
	for _, tc := range []struct {
		name, release, machine, params string
		present, broken                []string
		status                         protocol.Status
		missing, backports             []string
		errors                         int
	}{
		{
			name: "all there", release: "6.1.0-50-amd64", machine: "x86_64",
			params:  `{"programs":["kprobe","lsm"],"maps":["ringbuf"],"helpers":["loop"]}`,
			present: []string{"Kprobe", "LSM", "RingBuf", "FnLoop/Kprobe", "FnLoop/SocketFilter"},
			// loop is probed on every helper program type; only kprobe and
			// socket_filter say yes here.
			status:  protocol.StatusFail,
			missing: []string{"helper/loop@tracepoint", "helper/loop@raw_tracepoint", "helper/loop@perf_event", "helper/loop@sched_cls", "helper/loop@xdp", "helper/loop@cgroup_skb"},
		},
		{
			name: "ringbuf missing on 6.1", release: "6.1.0-50-amd64", machine: "x86_64",
			params:  `{"programs":["none"],"maps":["ringbuf","hash"],"helpers":["none"]}`,
			present: []string{"Hash"},
			status:  protocol.StatusFail, missing: []string{"map/ringbuf"},
		},
		{
			name: "old kernel, backport", release: "5.10.0-32-amd64", machine: "x86_64",
			params:  `{"programs":["none"],"maps":["ringbuf","bloom_filter","user_ringbuf"],"helpers":["none"]}`,
			present: []string{"RingBuf", "BloomFilter"},
			status:  protocol.StatusPass, backports: []string{"map/bloom_filter"},
		},
		{
			name: "not built in, probe error", release: "6.12.117+deb13-amd64", machine: "x86_64",
			params: `{"programs":["lirc_mode2","xdp"],"maps":["none"],"helpers":["none"]}`,
			broken: []string{"XDP"},
			status: protocol.StatusPass, errors: 1,
		},
		{
			name: "tracing on arm64 5.10", release: "5.10.0-32-cloud-arm64", machine: "aarch64",
			params: `{"programs":["tracing"],"maps":["none"],"helpers":["none"]}`,
			status: protocol.StatusPass,
		},
		{
			name: "helper not for the type", release: "6.12.117+deb13-amd64", machine: "x86_64",
			params:  `{"programs":["none"],"maps":["none"],"helpers":["get_func_ip"]}`,
			present: []string{"FnGetFuncIp/Kprobe"},
			status:  protocol.StatusPass,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tableProber{present: map[string]bool{}, broken: map[string]bool{}}
			for _, n := range tc.present {
				p.present[n] = true
			}
			for _, n := range tc.broken {
				p.broken[n] = true
			}
			env := featuresEnv{Release: tc.release, Machine: tc.machine, Configs: []string{config}, Probe: p}
			o, err := env.check(context.Background(), json.RawMessage(tc.params))
			if err != nil {
				t.Fatal(err)
			}
			d := o.Details.(*protocol.FeaturesDetails)
			if o.Status != tc.status {
				t.Errorf("status %s (%s), want %s", o.Status, o.Message, tc.status)
			}
			if !slices.Equal(d.Missing, orEmpty(tc.missing)) || !slices.Equal(d.Backports, orEmpty(tc.backports)) || d.Errors != tc.errors {
				t.Errorf("missing %v, backports %v, errors %d; want %v, %v, %d", d.Missing, d.Backports, d.Errors, tc.missing, tc.backports, tc.errors)
			}
			if tc.status == protocol.StatusFail && !strings.Contains(o.Message, tc.missing[0]) {
				t.Errorf("message %q does not name %s", o.Message, tc.missing[0])
			}
		})
	}
}

func TestFeaturesCheckBadInput(t *testing.T) {
	env := featuresEnv{Release: "6.1.0", Probe: tableProber{}}
	for _, params := range []string{`{"maps":["nope"]}`, `{"colour":"blue"}`} {
		if _, err := env.check(context.Background(), json.RawMessage(params)); err == nil {
			t.Errorf("%s: no error", params)
		}
	}
	env.Release = "weird"
	if _, err := env.check(context.Background(), nil); err == nil {
		t.Error("unparsable release: no error")
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestHelperProbeResult reads verifier answers as the kernels gave them to
// helper probes (6.1's words for bpf_get_func_ip on a tracepoint, 5.10's for
// bpf_loop, the verifier's for a helper a socket filter may not call).
func TestHelperProbeResult(t *testing.T) {
	rejected := func(errno unix.Errno, log ...string) error {
		return fmt.Errorf("load program: %w", &ebpf.VerifierError{Cause: errno, Log: log})
	}
	for _, tt := range []struct {
		name        string
		err         error
		h           asm.BuiltinFunc
		supported   bool
		unsupported bool
	}{
		{"loaded", nil, asm.FnLoop, true, false},
		{"arguments not set up", rejected(unix.EACCES, "0: (85) call bpf_probe_read_kernel#113", "R1 !read_ok"), asm.FnProbeReadKernel, true, false},
		{"unknown helper", rejected(unix.EINVAL, "0: (85) call unknown#181", "invalid func unknown#181"), asm.FnLoop, false, true},
		{"not for the type", rejected(unix.EINVAL, "0: (85) call bpf_get_current_pid_tgid#14", "unknown func bpf_get_current_pid_tgid#14"), asm.FnGetCurrentPidTgid, false, true},
		{"ENOTSUPP for the type", rejected(errENOTSUPP, "0: R1=ctx() R10=fp0", "0: (85) call bpf_get_func_ip#173", "func bpf_get_func_ip#173 not supported for program type 5"), asm.FnGetFuncIp, false, true},
		{"another helper's invalid func", rejected(unix.EINVAL, "invalid func unknown#999"), asm.FnLoop, false, false},
		{"not a verifier error", fmt.Errorf("load kernel spec: %w", unix.ENOMEM), asm.FnLoop, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := helperProbeResult(tt.err, tt.h)
			if got := err == nil; got != tt.supported {
				t.Errorf("supported = %v (%v), want %v", got, err, tt.supported)
			}
			if got := errors.Is(err, ebpf.ErrNotSupported); got != tt.unsupported {
				t.Errorf("unsupported = %v (%v), want %v", got, err, tt.unsupported)
			}
		})
	}
}
