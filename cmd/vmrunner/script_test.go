package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// TestScripts runs the CLI scripts in testdata/script: a command, its
// output, its exit status, as a user sees them. In a script, $CMDBIN is the
// directory holding only vmrunner (PATH=$CMDBIN is a PATH without QEMU or
// go) and VMRUNNER_CACHE is $WORK/cache. Extra commands:
//
//	exits N PROG [ARGS...]  run PROG, want exit status N
//	tinyfs DIR SIZE         mount a tmpfs of SIZE on DIR (root only: [root])
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			vmr, err := exec.LookPath("vmrunner") // testscript's link to this binary
			if err != nil {
				return err
			}
			env.Setenv("CMDBIN", filepath.Dir(vmr))
			env.Setenv("VMRUNNER_CACHE", filepath.Join(env.WorkDir, "cache"))
			env.Setenv("VMRUNNER_AGENT_DIR", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits N PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("%s: %v", args[1], err)
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
			"tinyfs": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: tinyfs DIR SIZE")
				}
				dir := ts.MkAbs(args[0])
				ts.Check(os.MkdirAll(dir, 0o755))
				ts.Check(unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+args[1]))
				ts.Defer(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
			},
		},
	})
}
