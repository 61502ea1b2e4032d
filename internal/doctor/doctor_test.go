package doctor

import "testing"

func TestSize(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"},
		{1 << 20, "1 MiB"}, {256 << 20, "256 MiB"}, {10 << 30, "10 GiB"}, {5 << 29, "2.5 GiB"},
	} {
		if got := Size(tt.n); got != tt.want {
			t.Errorf("Size(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFirstBlock(t *testing.T) {
	fs := []Finding{{OK, "a", "", ""}, {Warn, "b", "", "x"}, {Block, "c", "d", "e"}, {Block, "f", "", ""}}
	f, ok := FirstBlock(fs)
	if !ok || f.Name != "c" || f.Short() != "c: d; fix: e" {
		t.Errorf("FirstBlock = %+v, %v; want c", f, ok)
	}
	if _, ok := FirstBlock(fs[:2]); ok {
		t.Error("FirstBlock found a block among ok and warn")
	}
}
