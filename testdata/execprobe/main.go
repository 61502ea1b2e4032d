// Command execprobe reports, as JSON on stdout, what a program run by
// vmrunner exec sees in the guest: its argv, working directory,
// environment, credentials, mounts, CPUs and memory; then, when its last argument is
// "--die", it kills itself with SIGKILL, when it is "--hang", it sleeps for
// an hour, and when it is "--panic", it crashes the kernel (SysRq c). It uses cgo, so that it is
// dynamically linked: vmrunner must pack its loader and libc.
package main

// #include <unistd.h>
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type report struct {
	Args      []string          `json:"args"`
	Dir       string            `json:"dir"`
	Env       map[string]string `json:"env"`
	UID       int               `json:"uid"`
	CapEff    string            `json:"cap_eff"`
	Memlock   uint64            `json:"memlock"`
	Mounts    map[string]string `json:"mounts"` // mount point → file system type
	Testdata  string            `json:"testdata"`
	WroteDir  bool              `json:"wrote_dir"`
	PageSize  int               `json:"page_size"` // from libc, through cgo
	StdinNull bool              `json:"stdin_null"`
	NumCPU    int               `json:"num_cpu"`      // runtime.NumCPU: the CPUs it may run on
	MemTotal  int               `json:"mem_total_kb"` // /proc/meminfo's MemTotal
}

func main() {
	r := report{Args: os.Args[1:], Env: map[string]string{}, Mounts: map[string]string{}, UID: os.Getuid()}
	r.Dir, _ = os.Getwd()
	for _, e := range os.Environ() {
		k, v, _ := strings.Cut(e, "=")
		r.Env[k] = v
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				r.CapEff = strings.TrimSpace(v)
			}
		}
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(8 /* RLIMIT_MEMLOCK */, &lim) == nil {
		r.Memlock = lim.Cur
	}
	if b, err := os.ReadFile("/proc/mounts"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				r.Mounts[f[1]] = f[2]
			}
		}
	}
	if b, err := os.ReadFile("testdata/greeting.txt"); err == nil {
		r.Testdata = strings.TrimSpace(string(b))
	}
	r.WroteDir = os.WriteFile("written-in-guest.txt", []byte("x"), 0o644) == nil
	r.PageSize = int(C.sysconf(C._SC_PAGESIZE))
	r.NumCPU = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		_, _ = fmt.Sscanf(string(b), "MemTotal: %d kB", &r.MemTotal)
	}
	if in, err := os.Stdin.Stat(); err == nil {
		null, _ := os.Stat(os.DevNull)
		r.StdinNull = null != nil && os.SameFile(in, null)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	os.Stderr.WriteString("execprobe: done\n")
	switch os.Args[len(os.Args)-1] {
	case "--die":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "--hang":
		time.Sleep(time.Hour)
	case "--panic":
		_ = os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0o200)
		time.Sleep(time.Minute)
	}
}
