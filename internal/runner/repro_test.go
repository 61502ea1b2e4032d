package runner

import (
	"encoding/json"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

func TestShellQEMUArgs(t *testing.T) {
	for _, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		k := &kernels.Kernel{Image: "/c/Image", Uncompressed: "/c/vmlinux"}
		cfg := qemu.Config{Arch: arch, Kernel: k, Accel: qemu.AccelTCG, Profile: qemu.ProfileFast, MemoryMiB: 512, CPUs: 1,
			QMP: "/s/qmp", Control: "/s/ctl", Console: "/s/con"}
		normal := strings.Join(cfg.Args(), " ")
		cfg.Shell = true
		shell := strings.Join(cfg.Args(), " ")
		for _, want := range []string{"-chardev stdio,id=console,signal=off", "-serial chardev:console", "-chardev null,id=control", " " + protocol.ShellCmdlineFlag, "-qmp unix:/s/qmp"} {
			if !strings.Contains(shell, want) {
				t.Errorf("%s shell args lack %q: %s", arch, want, shell)
			}
		}
		for _, not := range []string{"/s/con", "/s/ctl"} {
			if strings.Contains(shell, not) {
				t.Errorf("%s shell args still use %s: %s", arch, not, shell)
			}
		}
		if strings.Contains(normal, protocol.ShellCmdlineFlag) || strings.Contains(normal, "stdio") {
			t.Errorf("%s: normal args changed: %s", arch, normal)
		}
	}
}

func TestReproExitCode(t *testing.T) {
	loaded, _ := json.Marshal(protocol.VerifierDetails{Program: "p", Loaded: true})
	rejected, _ := json.Marshal(protocol.VerifierDetails{Program: "p", Loaded: false})
	objectDetails, _ := json.Marshal(protocol.VerifierObjectDetails{Object: "o", Programs: 1, Loaded: 1})
	object := results.Record{Status: protocol.StatusPass, Details: objectDetails}
	loadError := results.Record{Status: protocol.StatusError, ErrorKind: results.KindLoad}
	pass := results.Record{Status: protocol.StatusPass, Details: loaded}
	fail := results.Record{Status: protocol.StatusFail, Details: rejected}
	// A program expected to be rejected passes the check, but repro says
	// what the verifier did.
	expectedReject := results.Record{Status: protocol.StatusPass, Details: rejected}
	badObject := results.Record{Status: protocol.StatusError, ErrorKind: results.KindCheck}
	boot := results.Record{Status: protocol.StatusError, ErrorKind: results.KindBootTimeout}
	for _, tc := range []struct {
		recs        []results.Record
		interrupted bool
		want        int
	}{
		{[]results.Record{pass}, false, results.ExitOK},
		{[]results.Record{pass, object}, false, results.ExitOK},
		{[]results.Record{pass, loadError}, false, results.ExitBadInput},
		{[]results.Record{pass, fail}, false, results.ExitFail},
		{[]results.Record{expectedReject}, false, results.ExitFail},
		{[]results.Record{fail, badObject}, false, results.ExitBadInput},
		{[]results.Record{badObject, boot}, false, results.ExitInfra},
		{nil, false, results.ExitInfra},
		{[]results.Record{pass}, true, results.ExitInterrupted},
	} {
		if got := reproExitCode(tc.recs, tc.interrupted); got != tc.want {
			t.Errorf("reproExitCode(%+v, %v) = %d, want %d", tc.recs, tc.interrupted, got, tc.want)
		}
	}
}
