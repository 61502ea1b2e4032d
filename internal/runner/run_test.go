package runner

import "testing"

func TestValidRelease(t *testing.T) {
	for s, want := range map[string]bool{
		"6.1.0-50-amd64": true, "6.12.117+deb13-cloud-arm64": true, "": false,
		"../../etc": false, "6.1 rm -rf": false, string(make([]byte, 200)): false,
	} {
		if got := validRelease(s); got != want {
			t.Errorf("validRelease(%q) = %v", s, got)
		}
	}
}
