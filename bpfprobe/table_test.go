package bpfprobe

import (
	"regexp"
	"testing"
)

func TestFeaturesTable(t *testing.T) {
	commit := regexp.MustCompile(`^[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, f := range Features {
		if seen[f.ID()] {
			t.Errorf("%s listed twice", f.ID())
		}
		seen[f.ID()] = true
		for _, s := range []string{f.Since, f.SinceArm64} {
			if _, n, err := parseNumbers(s); s != "" && (err != nil || n != 2) {
				t.Errorf("%s: since %q is not MAJOR.MINOR", f.ID(), s)
			}
		}
		if !commit.MatchString(f.Commit) {
			t.Errorf("%s: commit %q is not 12 hex digits", f.ID(), f.Commit)
		}
		for _, on := range f.On {
			if _, ok := Lookup(KindProgram, on); !ok {
				t.Errorf("%s: on unknown program type %q", f.ID(), on)
			}
		}
		if (f.Kind == KindHelper) != (len(f.On) > 0) {
			t.Errorf("%s: On must be set for helpers only", f.ID())
		}
	}
	for _, name := range HelperProgramTypes {
		if _, ok := Lookup(KindProgram, name); !ok {
			t.Errorf("HelperProgramTypes: unknown %q", name)
		}
	}
	// Spot checks against the upstream history.
	for id, want := range map[string]string{"map/ringbuf": "5.8", "helper/loop": "5.17", "program/lsm": "5.7", "helper/get_func_ip": "5.15"} {
		f := Features[indexOf(t, id)]
		if f.Since != want {
			t.Errorf("%s since %s, want %s", id, f.Since, want)
		}
	}
}

func indexOf(t *testing.T, id string) int {
	for i, f := range Features {
		if f.ID() == id {
			return i
		}
	}
	t.Fatalf("no feature %s", id)
	return -1
}

func TestJudge(t *testing.T) {
	yes, no := new(true), new(false)
	ringbuf, _ := Lookup(KindMap, "ringbuf")
	lsm, _ := Lookup(KindProgram, "lsm")
	loop, _ := Lookup(KindHelper, "loop")
	tracing, _ := Lookup(KindProgram, "tracing")
	v510, v61 := Version{5, 10, 0}, Version{6, 1, 0}
	for _, tt := range []struct {
		name      string
		f         Feature
		prog      string
		supported *bool
		v         Version
		machine   string
		config    map[string]string
		want      Verdict
	}{
		{"present", ringbuf, "", yes, v510, "x86_64", nil, VerdictOK},
		{"missing past since", ringbuf, "", no, v510, "x86_64", nil, VerdictMissing},
		{"absent before since", loop, "kprobe", no, v510, "x86_64", nil, VerdictOK},
		{"backport", loop, "kprobe", yes, v510, "x86_64", nil, VerdictBackport},
		{"helper on a type it is not for", loop, "lsm", no, v61, "x86_64", nil, VerdictUnjudged},
		{"probe error", ringbuf, "", nil, v61, "x86_64", nil, VerdictUnjudged},
		{"not built", lsm, "", no, v61, "x86_64", map[string]string{"BPF_LSM": "n"}, VerdictNotBuilt},
		{"built but missing", lsm, "", no, v61, "x86_64", map[string]string{"BPF_LSM": "y"}, VerdictMissing},
		{"config unknown", lsm, "", no, v61, "x86_64", nil, VerdictMissing},
		{"tracing on arm64 5.10", tracing, "", no, v510, "aarch64", nil, VerdictOK},
		{"tracing on x86_64 5.10", tracing, "", no, v510, "x86_64", nil, VerdictMissing},
		{"tracing on arm64 6.1", tracing, "", no, v61, "aarch64", nil, VerdictMissing},
	} {
		if got := Judge(tt.f, tt.prog, tt.supported, tt.v, tt.machine, tt.config); got != tt.want {
			t.Errorf("%s: Judge = %s, want %s", tt.name, got, tt.want)
		}
	}
}
