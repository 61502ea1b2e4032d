package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/internal/vm"
)

// TestExecLargeOutput: a program that writes more than the results keep
// (testdata/bigwriter) gets every byte to the host's stdout, in order, while
// vmrunner's memory stays bounded, and exec exits with the program's status;
// the results directory keeps the first vm.MaxSavedOutput bytes, says so on
// stderr, and results.json holds none of it (issue 20, item 3: the terminal
// used to get exactly 64 MiB). 96 MiB here, about 20 s under TCG;
// VMRUNNER_SOAK=1 writes 2 GiB, with --timeout 75m: under TCG on a 2-core
// machine at load 30 the channel carried 1.5 MB/s (1.96 GB in 20m45s).
func TestExecLargeOutput(t *testing.T) {
	integration(t)
	size, timeout := int64(96<<20), "20m"
	if os.Getenv("VMRUNNER_SOAK") != "" {
		size, timeout = 2<<30, "75m"
	}
	writer := filepath.Join(t.TempDir(), "bigwriter")
	build := exec.Command("go", "build", "-o", writer, "./testdata/bigwriter")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bigwriter: %v\n%s", err, out)
	}
	// What the program writes, from the same program on the host.
	want := sha256.New()
	host := exec.Command(writer, strconv.FormatInt(size, 10), "0")
	host.Stdout = want
	if err := host.Run(); err != nil {
		t.Fatalf("bigwriter on the host: %v", err)
	}

	out := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "vmrunner"), "exec", "--kernel", "6.1", "--no-dir", "--timeout", timeout, "--out", out, "--", writer, strconv.FormatInt(size, 10), "5")
	got := sha256.New()
	var n countWriter
	var saved bytes.Buffer // the first MaxSavedOutput bytes, as the results should keep them
	cmd.Stdout = io.MultiWriter(got, &n, &limitedBuffer{b: &saved, max: vm.MaxSavedOutput})
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	hwm := peak()
	t.Logf("vmrunner exec bigwriter %d: %v in %s, %d bytes on stdout, vmrunner peak RSS %d MiB (QEMU's not included)\nstderr:\n%s",
		size, err, time.Since(start).Round(time.Second), n.n, hwm>>20, stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("exit %d, want the program's 5", code)
	}
	if n.n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("stdout: %d bytes, sha256 %s; the program wrote %d, sha256 %s", n.n, hex.EncodeToString(got.Sum(nil)), size, hex.EncodeToString(want.Sum(nil)))
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("bigwriter: wrote %d bytes", size)) {
		t.Errorf("stderr lacks the program's own line")
	}
	// 26 MiB measured for 100 MB; a buffered copy would be the output's size.
	if hwm == 0 || hwm > 128<<20 {
		t.Errorf("vmrunner peaked at %d MiB, want at most 128 (bounded, whatever the output's size)", hwm>>20)
	}
	note := fmt.Sprintf("vmrunner exec: 6.1/x86_64: the results keep the first %d MiB of the program's %d bytes of output, all passed on", vm.MaxSavedOutput>>20, size+int64(len(fmt.Sprintf("bigwriter: wrote %d bytes\n", size))))
	if !strings.Contains(stderr.String(), note) {
		t.Errorf("stderr lacks %q", note)
	}
	var r resultsFile
	dir := readLatest(t, out, &r)
	if fi, err := os.Stat(filepath.Join(dir, "results.json")); err != nil || fi.Size() > 64<<10 {
		t.Errorf("results.json: %v, want a few KiB, not the output", err)
	}
	for _, rec := range r.Results {
		if rec.Check == "test/bigwriter" && (rec.Status != "fail" || !strings.Contains(rec.Message, "exit status 5; output.log keeps the first")) {
			t.Errorf("record %s: %s %q", rec.Check, rec.Status, rec.Message)
		}
	}
	kept, err := os.ReadFile(filepath.Join(dir, "6.1-x86_64", "test", "bigwriter", "stdout.log"))
	if err != nil || !bytes.Equal(kept, saved.Bytes()) {
		t.Errorf("stdout.log: %d bytes (%v), want the first %d passed on", len(kept), err, saved.Len())
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int64
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - int64(l.b.Len()); room > 0 {
		l.b.Write(p[:min(int64(len(p)), room)])
	}
	return len(p), nil
}

// watchPeakRSS samples pid's peak resident set (VmHWM) until the returned
// function is called, which returns the last sample: the process's own,
// without its children's (the rusage of a waited process includes QEMU's).
func watchPeakRSS(pid int) func() int64 {
	var mu sync.Mutex
	var peak int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb := vmHWM(pid); kb > 0 {
				mu.Lock()
				peak = max(peak, kb<<10)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// vmHWM reads VmHWM (KiB) of a live process, 0 when it cannot.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
