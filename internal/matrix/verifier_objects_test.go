package matrix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// loaderDir makes a matrix directory holding copies of
// testdata/bpf/loader's objects, plus tracer_x86_64.o and tracer_arm64.o
// for {arch}.
func loaderDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, _ := filepath.Glob("../../testdata/bpf/loader/*.o")
	copies := map[string]string{"tracer_x86_64.o": "globals.o", "tracer_arm64.o": "globals.o"}
	for _, s := range src {
		copies[filepath.Base(s)] = filepath.Base(s)
	}
	for to, from := range copies {
		b, err := os.ReadFile(filepath.Join("../../testdata/bpf/loader", from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Executables with symbols for uprobe_binary: this test's own binary.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"target-x86_64", "target-arm64"} {
		if err := os.WriteFile(filepath.Join(dir, name), self, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestVerifierObjectSettings: objects as mappings with the settings a
// loader applies, {arch} paths and bpf2go's per-arch names, sent to the
// guest in its form.
func TestVerifierObjectSettings(t *testing.T) {
	dir := loaderDir(t)
	m, err := ParseMatrix(filepath.Join(dir, "m.yaml"), []byte(testKernel+`checks:
  - verifier:
      attach: true
      objects:
        - kprobe_args_*_bpfel.o
        - tracer_{arch}.o
        - path: constants.o
          name: constants_set
          constants: {skip_bad_read: true, port: 8080, offset: -4, limit: 0x10000}
        - path: sizes.o
          maps: {flows: {max_entries: 1024}}
        - path: freplace.o
          attach_to:
            replace_decide: {object: freplace_target.o, program: xdp_target}
        - path: conntrack.o
          modules: [nf_conntrack, nf-defrag-ipv4]
        - path: uprobe.o
          uprobe_binary: target-{arch}
      expect:
        constants_set/guarded_read: {fail: ["<5.2"]}
        kprobe_args/read_count: {fail: ["<4.1"]}
        tracer: {fail: ["<5.2"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Checks[0]
	var got protocol.VerifierParams
	if err := json.Unmarshal(c.Params, &got); err != nil {
		t.Fatal(err)
	}
	o := "/vmrunner/objects/"
	want := []protocol.VerifierObject{
		{Path: o + "kprobe_args_arm64_bpfel.o", Arch: "arm64"},
		{Path: o + "kprobe_args_x86_bpfel.o", Arch: "x86_64"},
		{Path: o + "tracer_x86_64.o", Name: "tracer", Arch: "x86_64"},
		{Path: o + "tracer_arm64.o", Name: "tracer", Arch: "arm64"},
		{Path: o + "constants.o", Name: "constants_set", Constants: map[string]string{"skip_bad_read": "true", "port": "8080", "offset": "-4", "limit": "0x10000"}},
		{Path: o + "sizes.o", Maps: map[string]protocol.VerifierMap{"flows": {MaxEntries: 1024}}},
		{Path: o + "freplace.o", AttachTo: map[string]protocol.VerifierTarget{"replace_decide": {Object: o + "freplace_target.o", Program: "xdp_target"}}},
		{Path: o + "conntrack.o", Modules: []string{"nf_conntrack", "nf_defrag_ipv4"}},
		{Path: o + "uprobe.o", UprobeBinary: "/vmrunner/uprobe/{arch}/target-{arch}"},
	}
	equal(t, "objects", got.Objects, want)
	// attach: true packs what a legacy tc attach needs.
	equal(t, "modules", c.Modules, []string{"nf_conntrack", "nf_defrag_ipv4", "sch_ingress", "cls_bpf"})
	equal(t, "modules packed", OnDemandModules(m), []string{"nf_conntrack", "nf_defrag_ipv4", "sch_ingress", "cls_bpf"})
	if !got.Attach {
		t.Error("attach not sent")
	}
	var packed []string
	for _, f := range c.Files {
		packed = append(packed, filepath.Base(f.Host)+"="+f.Guest)
	}
	equal(t, "files", packed, []string{
		"kprobe_args_arm64_bpfel.o=" + o + "kprobe_args_arm64_bpfel.o", "kprobe_args_x86_bpfel.o=" + o + "kprobe_args_x86_bpfel.o",
		"tracer_x86_64.o=" + o + "tracer_x86_64.o", "tracer_arm64.o=" + o + "tracer_arm64.o",
		"constants.o=" + o + "constants.o", "sizes.o=" + o + "sizes.o", "freplace.o=" + o + "freplace.o",
		"freplace_target.o=" + o + "freplace_target.o", "conntrack.o=" + o + "conntrack.o", "uprobe.o=" + o + "uprobe.o",
		"target-x86_64=/vmrunner/uprobe/x86_64/target-x86_64", "target-arm64=/vmrunner/uprobe/arm64/target-arm64",
	})
}

// TestVerifierObjectErrors: what is wrong with an object's settings is
// found on the host, against the object, at its line and column.
func TestVerifierObjectErrors(t *testing.T) {
	dir := loaderDir(t)
	if err := os.WriteFile(filepath.Join(dir, "flows_riscv_bpfel.o"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, objects, want string }{
		{"constant too big", "[{path: constants.o, constants: {port: 70000}}]",
			`m.yaml:4:64: checks[0].verifier: objects[0].constants.port: constants.o: port is an unsigned 2-byte integer (unsigned short): expected an integer from 0 to 65535, got "70000"`},
		{"bool", "[{path: constants.o, constants: {skip_bad_read: 1}}]",
			`m.yaml:4:73: checks[0].verifier: objects[0].constants.skip_bad_read: constants.o: skip_bad_read is a bool: expected true or false, got "1"`},
		{"no such constant", "[{path: constants.o, constants: {prot: 1}}]",
			`objects[0].constants.prot: constants.o: no global "prot" in the object; its constants: limit, mac, offset, port, skip_bad_read`},
		{"a variable", "[{path: globals.o, constants: {packets: 1}}]",
			`packets is a variable in .bss, not a constant`},
		{"constant not a scalar", "[{path: constants.o, constants: {port: [1]}}]",
			`m.yaml:4:64: checks[0].verifier.objects[0]: constants.port: expected a number, true or false`},
		{"size 0", "[{path: sizes.o, maps: {flows: {max_entries: 0}}}]",
			`m.yaml:4:70: checks[0].verifier: objects[0].maps.flows: sizes.o: flows: max_entries must be at least 1`},
		{"no such map", "[{path: sizes.o, maps: {flow: {max_entries: 8}}}]",
			`objects[0].maps.flow: sizes.o: no map "flow" in the object; its maps: flows`},
		{"unknown setting", "[{path: sizes.o, map: {}}]",
			`m.yaml:4:42: checks[0].verifier.objects[0]: unknown key "map"`},
		{"no path", "[{name: x}]", `m.yaml:4:26: checks[0].verifier.objects[0]: missing path`},
		{"not an object item", "[[a.o]]", `checks[0].verifier.objects[0]: expected an object path or {path: FILE`},
		{"attach_to no program", "[{path: freplace.o, attach_to: {replace: {object: freplace_target.o, program: xdp_target}}}]",
			`m.yaml:4:57: checks[0].verifier: objects[0].attach_to: no program "replace" in freplace.o; it has: replace_decide, trace_decide`},
		{"attach_to no target program", "[{path: freplace.o, attach_to: {replace_decide: {object: freplace_target.o, program: xdp}}}]",
			`objects[0].attach_to.replace_decide: no program "xdp" in freplace_target.o; it has: xdp_target`},
		{"attach_to no target object", "[{path: freplace.o, attach_to: {replace_decide: {object: nope.o, program: x}}}]",
			`objects[0].attach_to.replace_decide: object nope.o:`},
		{"module name", "[{path: conntrack.o, modules: [\"../x\"]}]",
			`m.yaml:4:56: checks[0].verifier.objects[0]: modules[0]: expected a module name like nf_conntrack, got "../x"`},
		{"other arch", "[\"*_bpfel.o\"]", `flows_riscv_bpfel.o is bpf2go's build for riscv, an arch vmrunner does not run; narrow the glob`},
		{"no file for an arch", "[\"constants_{arch}.o\"]", `objects[0]: "constants_{arch}.o" matches no file for x86_64`},
		{"same result name", "[globals.o, {path: constants.o, name: globals}]",
			`objects[1]: ` + filepath.Join(dir, "globals.o") + ` and ` + filepath.Join(dir, "constants.o") + ` both report as verifier/globals on x86_64; give one a name:`},
		{"uprobe binary missing", "[{path: uprobe.o, uprobe_binary: nope}]", `objects[0].uprobe_binary: ` + filepath.Join(dir, "nope") + `: no such file`},
		{"uprobe binary not ELF", "[{path: uprobe.o, uprobe_binary: flows_riscv_bpfel.o}]", `objects[0].uprobe_binary: ` + filepath.Join(dir, "flows_riscv_bpfel.o") + `: not an ELF executable`},
		{"expect an object", "[globals.o], expect: {globalz: {fail: [\"5.10\"]}}",
			`expect: no program "globalz" in the objects (PROGRAM, OBJECT/PROGRAM or OBJECT)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMatrix(filepath.Join(dir, "m.yaml"), []byte(testKernel+"checks:\n  - verifier: {objects: "+tc.objects+"}\n"))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n %v\nwant it to contain\n %s", err, tc.want)
			}
		})
	}
}
