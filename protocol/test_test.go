package protocol

import (
	"strings"
	"testing"
	"time"
)

func TestCheckGuestPath(t *testing.T) {
	for p, want := range map[string]string{
		"/work/pkg":             "",
		"/tmp/go-build1/b001/x": "",
		"/lib/x86_64-linux-gnu": "",
		"/root/.config":         "",
		"relative/x":            "not an absolute path",
		"/a/../b":               "not a clean path",
		"/a/":                   "not a clean path",
		"/":                     "the guest's root",
		"/proc":                 "the guest's own",
		"/proc/self/exe":        "the guest's own",
		"/sys/fs/bpf/x":         "the guest's own",
		"/dev/kvm":              "the guest's own",
		"/init":                 "the guest's own",
		"/vmrunner/share/0":     "the guest's own",
		"/lib/modules/6.1.0":    "the guest's own",
		"/etc/vmrunner/modules": "the guest's own",
		"/procfs":               "",
		"/a\nb":                 "NUL or newline",
	} {
		err := CheckGuestPath(p)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckGuestPath(%q) = %v, want nil", p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckGuestPath(%q) = %v, want an error saying %q", p, err, want)
		}
	}
}

func TestTestParamsValidate(t *testing.T) {
	good := TestParams{Name: "pkg.test", Binary: "/tmp/b/pkg.test", Dir: "/work/pkg", Format: FormatGo,
		Env: []string{"A=1", "EMPTY="}, Binds: []Bind{{Source: ShareRoot + "/0", Target: "/work/pkg"}}}
	if probs := good.Validate(); len(probs) > 0 {
		t.Fatalf("valid params: %v", probs)
	}
	unbounded := good
	unbounded.MaxOutput = NoOutputLimit
	if probs := unbounded.Validate(); len(probs) > 0 {
		t.Fatalf("max_output %d: %v", NoOutputLimit, probs)
	}
	for name, mutate := range map[string]func(*TestParams){
		"name with slash":   func(p *TestParams) { p.Name = "a/b" },
		"empty name":        func(p *TestParams) { p.Name = "" },
		"name dotdot":       func(p *TestParams) { p.Name = ".." },
		"relative binary":   func(p *TestParams) { p.Binary = "pkg.test" },
		"unclean dir":       func(p *TestParams) { p.Dir = "/work/../etc" },
		"format":            func(p *TestParams) { p.Format = "tap" },
		"env without =":     func(p *TestParams) { p.Env = []string{"A"} },
		"env without key":   func(p *TestParams) { p.Env = []string{"=1"} },
		"bind from outside": func(p *TestParams) { p.Binds = []Bind{{Source: "/etc", Target: "/work"}} },
		"bind escaping":     func(p *TestParams) { p.Binds = []Bind{{Source: ShareRoot + "/../../etc", Target: "/work"}} },
		"bind onto /proc":   func(p *TestParams) { p.Binds = []Bind{{Source: ShareRoot + "/0", Target: "/proc/sys"}} },
		"negative output":   func(p *TestParams) { p.MaxOutput = NoOutputLimit - 1 },
	} {
		p := good
		p.Binds = append([]Bind(nil), good.Binds...)
		mutate(&p)
		if probs := p.Validate(); len(probs) == 0 {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
	}
}

func TestTestTimeouts(t *testing.T) {
	for _, run := range []time.Duration{time.Second, 20 * time.Second, 45 * time.Second, 10 * time.Minute} {
		check := TestCheckTimeout(run)
		if got := check - TestStopMargin(check); got < run-time.Millisecond || got > run+time.Millisecond {
			t.Errorf("run %s: check timeout %s stops the program after %s", run, check, got)
		}
	}
}
