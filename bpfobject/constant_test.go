package bpfobject

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func loadSpec(t *testing.T, name string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec("../testdata/bpf/loader/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestConstantBytes(t *testing.T) {
	spec := loadSpec(t, "constants.o")
	for _, tc := range []struct {
		name, value string
		want        []byte
		err         string
	}{
		{"skip_bad_read", "true", []byte{1}, ""},
		{"skip_bad_read", "false", []byte{0}, ""},
		{"skip_bad_read", "1", nil, "is a bool: expected true or false"},
		{"port", "8080", []byte{0x90, 0x1f}, ""},
		{"port", "0xffff", []byte{0xff, 0xff}, ""},
		{"port", "65536", nil, "an unsigned 2-byte integer (unsigned short): expected an integer from 0 to 65535"},
		{"port", "-1", nil, "from 0 to 65535"},
		{"port", "http", nil, `got "http"`},
		{"offset", "-4", []byte{0xfc, 0xff, 0xff, 0xff}, ""},
		{"offset", "2147483648", nil, "a signed 4-byte integer (int): expected an integer from -2147483648 to 2147483647"},
		{"limit", "18446744073709551615", bytes.Repeat([]byte{0xff}, 8), ""},
		{"limit", "1_000", []byte{0xe8, 0x03, 0, 0, 0, 0, 0, 0}, ""},
		{"mac", "1", nil, "mac is an array of 6: only integers, bools and enums can be set"},
		{"nope", "1", nil, `no global "nope" in the object; its constants: limit, mac, offset, port, skip_bad_read`},
	} {
		got, err := ConstantBytes(spec, tc.name, tc.value)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s=%s: error %v, want one containing %q", tc.name, tc.value, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		case tc.err == "" && !bytes.Equal(got, tc.want):
			t.Errorf("%s=%s: % x, want % x", tc.name, tc.value, got, tc.want)
		}
	}

	globals := loadSpec(t, "globals.o")
	if _, err := ConstantBytes(globals, "packets", "1"); err == nil || !strings.Contains(err.Error(), "packets is a variable in .bss, not a constant") {
		t.Errorf("variable in .bss: %v", err)
	}
	if _, err := ConstantBytes(loadSpec(t, "sizes.o"), "x", "1"); err == nil || !strings.Contains(err.Error(), "it has no constants") {
		t.Errorf("no constants: %v", err)
	}
}

// TestConstantBytesSet checks that the bytes are what cilium/ebpf writes
// for the same value.
func TestConstantBytesSet(t *testing.T) {
	spec := loadSpec(t, "constants.o")
	b, err := ConstantBytes(spec, "offset", "-4")
	if err != nil {
		t.Fatal(err)
	}
	v := spec.Variables["offset"]
	if err := v.Set(b); err != nil {
		t.Fatal(err)
	}
	var got int32
	if err := v.Get(&got); err != nil || got != -4 {
		t.Errorf("offset = %d, %v; want -4", got, err)
	}
}

func TestCheckMaxEntries(t *testing.T) {
	sizes := loadSpec(t, "sizes.o")
	for _, tc := range []struct {
		spec *ebpf.CollectionSpec
		name string
		n    uint32
		err  string
	}{
		{sizes, "flows", 1024, ""},
		{sizes, "flows", 0, "at least 1"},
		{sizes, "flows", MaxMapEntries + 1, "over vmrunner's bound"},
		{sizes, "flow", 10, `no map "flow" in the object; its maps: flows`},
		{loadSpec(t, "globals.o"), ".data", 2, "its size cannot be set"},
		{loadSpec(t, "constants.o"), "x", 2, "it has no maps"},
	} {
		err := CheckMaxEntries(tc.spec, tc.name, tc.n)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s=%d: %v, want %q", tc.name, tc.n, err, tc.err)
		}
	}
}
