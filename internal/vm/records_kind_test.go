package vm

import (
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"
)

// TestGuestErrorKind: the guest may say an error is the input's (load);
// anything else it says is a check error.
func TestGuestErrorKind(t *testing.T) {
	for in, want := range map[string]results.ErrorKind{
		protocol.ErrorKindLoad: results.KindLoad,
		"":                     results.KindCheck,
		"bad-input":            results.KindCheck,
		"panic":                results.KindCheck,
	} {
		if got := guestErrorKind(in); got != want {
			t.Errorf("guestErrorKind(%q) = %s, want %s", in, got, want)
		}
	}
}
