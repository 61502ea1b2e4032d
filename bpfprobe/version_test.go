package bpfprobe

import (
	"errors"
	"testing"
)

func TestParseRelease(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Version
	}{
		{"6.12.117+deb13-amd64", Version{6, 12, 117}},
		{"6.12.117+deb13-cloud-arm64", Version{6, 12, 117}},
		{"5.10.0-32-amd64", Version{5, 10, 0}},
		{"6.1.0-50-cloud-arm64", Version{6, 1, 0}},
		{"6.8-rc1", Version{6, 8, 0}},
		{"4.18.0-553.el8_10.x86_64", Version{4, 18, 0}},
		{"6.1", Version{6, 1, 0}},
	} {
		got, err := ParseRelease(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "6", "linux", "6.x", "-6.1"} {
		if _, err := ParseRelease(bad); !errors.Is(err, ErrBadVersion) {
			t.Errorf("ParseRelease(%q) = %v, want ErrBadVersion", bad, err)
		}
	}
}

func TestRange(t *testing.T) {
	for _, tt := range []struct {
		rng  string
		v    Version
		want bool
	}{
		{"<5.17", Version{5, 10, 0}, true},
		{"<5.17", Version{5, 16, 200}, true},
		{"<5.17", Version{5, 17, 0}, false},
		{"<5.17", Version{6, 1, 0}, false},
		{"<=5.16", Version{5, 16, 0}, true},
		{"<=5.16", Version{5, 16, 1}, false},
		{">=6.0", Version{6, 0, 0}, true},
		{">=6.0", Version{5, 19, 9}, false},
		{">6.1", Version{6, 1, 0}, false},
		{">6.1", Version{6, 1, 1}, true},
		{"5.10", Version{5, 10, 233}, true},
		{"5.10", Version{5, 1, 0}, false},
		{"5.10.0", Version{5, 10, 0}, true},
		{"5.10.0", Version{5, 10, 1}, false},
		{"=5.10", Version{5, 10, 0}, true},
		{"=5.10", Version{5, 10, 3}, false},
		{" >= 6.12 ", Version{6, 12, 117}, true},
	} {
		r, err := ParseRange(tt.rng)
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", tt.rng, err)
		}
		if got := r.Contains(tt.v); got != tt.want {
			t.Errorf("%q contains %v = %v, want %v", tt.rng, tt.v, got, tt.want)
		}
	}
	for _, bad := range []string{"", "<", "5", "<5", "~5.10", "5.10.1.2", "<<5.1", "five.ten", ">=5.x", "5.10-6.1"} {
		if _, err := ParseRange(bad); !errors.Is(err, ErrBadVersion) {
			t.Errorf("ParseRange(%q) = %v, want ErrBadVersion", bad, err)
		}
	}
}

func TestAnyContains(t *testing.T) {
	got, ok, err := AnyContains([]string{">=7.0", "<5.17"}, Version{5, 10, 0})
	if err != nil || !ok || got != "<5.17" {
		t.Errorf("AnyContains = %q, %v, %v", got, ok, err)
	}
	if _, ok, _ := AnyContains([]string{"<5.17"}, Version{6, 1, 0}); ok {
		t.Error("6.1 in <5.17")
	}
	if _, _, err := AnyContains([]string{"junk"}, Version{6, 1, 0}); err == nil {
		t.Error("no error for a bad range")
	}
}
