package results

import (
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

func TestExitCode(t *testing.T) {
	pass := Record{Status: protocol.StatusPass}
	fail := Record{Status: protocol.StatusFail}
	skip := Record{Status: protocol.StatusSkip}
	infra := Record{Status: protocol.StatusError, ErrorKind: KindPanic}
	bad := Record{Status: protocol.StatusError, ErrorKind: KindBadInput}
	intr := Record{Status: protocol.StatusError, ErrorKind: KindInterrupted}
	load := Record{Status: protocol.StatusError, ErrorKind: KindLoad}
	tests := []struct {
		name string
		recs []Record
		want int
	}{
		{"empty", nil, ExitOK},
		{"all pass", []Record{pass, skip, pass}, ExitOK},
		{"a failure", []Record{pass, fail}, ExitFail},
		{"infra beats failure", []Record{fail, infra}, ExitInfra},
		{"a load error is a failure", []Record{pass, load}, ExitFail},
		{"infra beats a load error", []Record{load, infra}, ExitInfra},
		{"bad input beats infra", []Record{infra, bad, fail}, ExitBadInput},
		{"interrupted beats all", []Record{bad, intr}, ExitInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.recs); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}
