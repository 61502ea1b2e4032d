package results

import (
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestReasonCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		rec  Record
		want protocol.Reason
	}{
		{"pass", Record{Check: "btf", Status: protocol.StatusPass}, ""},
		{"pass rejected as expected keeps the guest's", Record{Check: "verifier/p/x", Status: protocol.StatusPass, Reason: protocol.ReasonBPFCallsUnsupported}, protocol.ReasonBPFCallsUnsupported},
		{"guest's reason", Record{Check: "verifier/p/x", Status: protocol.StatusFail, Reason: protocol.ReasonTooComplex}, protocol.ReasonTooComplex},
		{"load error with the guest's reason", Record{Check: "verifier/p/x", Status: protocol.StatusError, ErrorKind: KindLoad, Reason: protocol.ReasonKfuncMissing}, protocol.ReasonKfuncMissing},
		{"load error without", Record{Check: "verifier/p", Status: protocol.StatusError, ErrorKind: KindLoad}, protocol.ReasonLoader},
		{"a panic wins over the guest", Record{Check: "verifier/p/x", Status: protocol.StatusError, ErrorKind: KindPanic, Reason: protocol.ReasonTooComplex}, protocol.ReasonKernelPanic},
		{"timeout", Record{Check: "vm", Status: protocol.StatusError, ErrorKind: KindTimeout}, protocol.ReasonTimeout},
		{"boot timeout", Record{Check: "btf", Status: protocol.StatusError, ErrorKind: KindBootTimeout}, protocol.ReasonBootTimeout},
		{"agent", Record{Check: "vm", Status: protocol.StatusError, ErrorKind: KindAgent}, protocol.ReasonAgent},
		{"incomplete", Record{Check: "vm", Status: protocol.StatusError, ErrorKind: KindIncomplete}, protocol.ReasonIncomplete},
		{"check error", Record{Check: "features", Status: protocol.StatusError, ErrorKind: KindCheck}, protocol.ReasonCheckError},
		{"error without kind", Record{Check: "features", Status: protocol.StatusError}, protocol.ReasonCheckError},
		{"btf fail", Record{Check: "btf", Status: protocol.StatusFail}, protocol.ReasonMissingBTF},
		{"features fail", Record{Check: "features", Status: protocol.StatusFail}, protocol.ReasonFeatureMissing},
		{"test fail", Record{Check: "test/TestX", Status: protocol.StatusFail}, protocol.ReasonProgramFailed},
		{"other fail", Record{Check: "selftest", Status: protocol.StatusFail}, protocol.ReasonCheckFailed},
		{"skip", Record{Check: "verifier/p/x", Status: protocol.StatusSkip}, protocol.ReasonSkipped},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.ReasonCode(); got != tt.want {
				t.Errorf("ReasonCode() = %q, want %q", got, tt.want)
			}
			w := tt.rec.WithReason()
			if w.Reason != tt.want {
				t.Errorf("WithReason().Reason = %q, want %q", w.Reason, tt.want)
			}
			if tt.rec.Reason != "" && tt.rec.Reason != tt.want && w.ReasonDetail != "" {
				t.Errorf("a replaced reason kept its detail %q", w.ReasonDetail)
			}
		})
	}
	for k := range kindReasons {
		if _, ok := kindReasons[k].Info(); !ok {
			t.Errorf("kind %s: reason %s is not in protocol.Reasons", k, kindReasons[k])
		}
	}
}
