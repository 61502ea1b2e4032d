package spelling

import "testing"

func TestDidYouMean(t *testing.T) {
	keys := []string{"defaults", "kernels", "checks", "name", "source", "cpus", "memory", "check_timeout"}
	for _, tc := range []struct{ word, want string }{
		{"sourc", "source"},
		{"Source", "source"},
		{"kernel", "kernels"},
		{"memroy", "memory"},
		{"cpu", "cpus"},
		{"check-timeout", "check_timeout"},
		{"nmae", "name"},
		{"x", ""},
		{"arch", ""},
		{"timeout", ""},
		{"", ""},
	} {
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got := DidYouMean(tc.word, keys); got != want {
			t.Errorf("%s: got %q, want %q", tc.word, got, want)
		}
	}
	if got := DidYouMean("a", nil); got != "" {
		t.Errorf("no candidates: got %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"source", "source", 0},
		{"sourc", "source", 1},
		{"memroy", "memory", 1},
		{"btf", "bft", 1},
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("%s/%s: got %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("%s/%s: got %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}
