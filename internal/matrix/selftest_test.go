package matrix

import (
	"strings"
	"testing"
)

// The selftest action is checked on the host, before any VM boots.
func TestSelftestParams(t *testing.T) {
	m, err := ParseMatrix("m.yaml", []byte(testKernel+"checks:\n  - selftest: {action: hang, timeout: 1m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "params", string(m.Checks[0].Params), `{"action":"hang"}`)

	for _, tc := range []struct{ check, want string }{
		{"  - selftest\n", "m.yaml:4:5: checks[0].selftest: missing action: expected one of pass, panic, hang, exit-agent, flood-channel, garbage"},
		{"  - selftest: {timeout: 1m}\n", "m.yaml:4:15: checks[0].selftest: missing action: expected one of pass, panic"},
		{"  - selftest: {action: explode}\n", `m.yaml:4:24: checks[0].selftest: action: "explode": expected one of pass, panic`},
	} {
		_, err := ParseMatrix("m.yaml", []byte(testKernel+"checks:\n"+tc.check))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.check, err, tc.want)
		}
	}
}
