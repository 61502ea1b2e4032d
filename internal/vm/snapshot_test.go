package vm

import (
	"bytes"
	"context"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/snapshot"
)

// A snapshot's key follows the contents of the kernel and initramfs, the
// memory, and nothing per run.
func TestSnapshotKey(t *testing.T) {
	if _, err := qemu.LookPath(kernels.X86_64); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "a.cpio")
	os.WriteFile(initrd, []byte("archive one"), 0o600)
	k := &kernels.Kernel{Arch: kernels.X86_64, Image: "/c/bzImage", Uncompressed: "/c/vmlinux", SHA256: "deb1"}
	c := qemu.Config{Arch: kernels.X86_64, Kernel: k, Initramfs: initrd, MemoryMiB: 512, CPUs: 1, Accel: qemu.AccelTCG, Profile: qemu.ProfileFast}
	cache, err := snapshot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := func(c qemu.Config) string {
		t.Helper()
		k, err := snapshotKey(cache, c)
		if err != nil {
			t.Fatal(err)
		}
		if k.QEMU == "" || !strings.HasPrefix(k.QEMUVersion, "QEMU emulator version") {
			t.Errorf("QEMU identity %q %q", k.QEMU, k.QEMUVersion)
		}
		return k.ID()
	}
	first := key(c)
	if key(c) != first {
		t.Fatal("the same VM has two keys")
	}
	os.WriteFile(initrd, []byte("archive two"), 0o600)
	if key(c) == first {
		t.Error("a changed initramfs kept its key")
	}
	os.WriteFile(initrd, []byte("archive one"), 0o600)
	c.MemoryMiB = 1024
	if key(c) == first {
		t.Error("more memory kept the key")
	}
	c.MemoryMiB = 512
	k2 := *k
	k2.SHA256 = "deb2"
	c.Kernel = &k2
	if key(c) == first {
		t.Error("another kernel kept the key")
	}
}

// The host's files reach a real agent over the channel, verified, and the
// agent says so; a file that changed on the host since it was described
// does not.
func TestPlanFilesReachTheAgent(t *testing.T) {
	dir := t.TempDir()
	object := bytes.Repeat([]byte("\x7fELF object "), 50000) // several chunks
	host := filepath.Join(dir, "probes.o")
	os.WriteFile(host, object, 0o644)
	pf, err := OpenPlanFile(host, "/vmrunner/objects/probes.o", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPlanFile(host, "/etc/probes.o", false); err == nil {
		t.Error("a guest path outside /vmrunner/ was accepted")
	}
	watched := PlanFile{Spec: pf.Spec, Data: object} // repro --watch sends what it read

	for _, f := range []PlanFile{pf, watched} {
		root := t.TempDir()
		var clock time.Time
		agent := &guest.Agent{FilesRoot: root,
			SetClock: func(t time.Time) error { clock = t; return nil }, AddEntropy: func([]byte) error { return nil },
			Checks: map[string]guest.Check{}}
		prep, err := converse(t, agent, hostState(nil), f)
		if err != nil {
			t.Fatal(err)
		}
		if prep.Boot != protocol.BootCold || prep.Files != 1 || prep.FileBytes != int64(len(object)) {
			t.Errorf("prepared = %+v", prep)
		}
		if time.Since(clock) > time.Minute || time.Since(clock) < 0 {
			t.Errorf("clock set to %s", clock)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "vmrunner/objects/probes.o")); !bytes.Equal(got, object) {
			t.Errorf("the guest has %d bytes, want %d", len(got), len(object))
		}
	}

	// The file is cut after it was described: the host notices.
	os.WriteFile(host, object[:1000], 0o644)
	_, err = converse(t, &guest.Agent{FilesRoot: t.TempDir(), SetClock: func(time.Time) error { return nil },
		AddEntropy: func([]byte) error { return nil }}, hostState(nil), pf)
	if err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Errorf("err = %v", err)
	}
}

// converse runs an agent on a pipe pair, sends it a plan with h and f and
// returns its prepared, or the host's error sending the file.
func converse(t *testing.T, a *guest.Agent, h *protocol.HostState, f PlanFile) (*protocol.Prepared, error) {
	t.Helper()
	guestR, hostW := io.Pipe()
	hostR, guestW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- a.Run(ctx, struct {
			io.Reader
			io.Writer
		}{guestR, guestW})
		guestW.Close()
	}()
	defer hostW.Close()
	enc, dec := protocol.NewEncoder(hostW), protocol.NewDecoder(hostR)
	if m, err := dec.Next(); err != nil || m.Type != protocol.TypeReady {
		t.Fatalf("want ready: %v", err)
	}
	plan := protocol.Plan{Host: h, Files: []protocol.FileSpec{f.Spec}}
	if err := enc.Send(protocol.Message{Type: protocol.TypePlan, Plan: &plan}); err != nil {
		t.Fatal(err)
	}
	if err := sendPlanFiles(enc, []PlanFile{f}); err != nil {
		hostW.Close()
		hostR.Close()
		<-errc
		return nil, err
	}
	m, err := dec.Next()
	if err != nil || m.Type != protocol.TypePrepared {
		t.Fatalf("want prepared, got %v, %v", m.Type, err)
	}
	if m, err := dec.Next(); err != nil || m.Type != protocol.TypeDone {
		t.Fatalf("want done, got %v, %v", m.Type, err)
	}
	enc.Send(protocol.Message{Type: protocol.TypeBye})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return m.Prepared, nil
}

// The host's state for a restored VM names the snapshot's time; for a
// booted one it says cold; each carries its own entropy.
func TestHostState(t *testing.T) {
	cold, again := hostState(nil), hostState(nil)
	if cold.Boot != protocol.BootCold || cold.SnapshotSavedUnixNS != 0 || bytes.Equal(cold.Entropy, again.Entropy) || len(cold.Entropy) != hostEntropy {
		t.Errorf("cold: %+v, %+v", cold, again)
	}
	saved := time.Now().Add(-time.Hour)
	h := hostState(&snapshot.Snapshot{Meta: snapshot.Meta{Saved: saved}})
	if h.Boot != protocol.BootSnapshot || h.SnapshotSavedUnixNS != saved.UnixNano() {
		t.Errorf("restored: %+v", h)
	}
	// A snapshot saved by a clock ahead of this one is not from the future.
	h = hostState(&snapshot.Snapshot{Meta: snapshot.Meta{Saved: time.Now().Add(time.Hour)}})
	if h.SnapshotSavedUnixNS > h.TimeUnixNS {
		t.Errorf("snapshot from the future: %+v", h)
	}
	var sent bytes.Buffer
	if err := protocol.NewEncoder(&sent).Send(protocol.Message{Type: protocol.TypePlan, Plan: &protocol.Plan{Host: h}}); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.NewDecoder(&sent).Next(); err != nil {
		t.Errorf("the guest would refuse it: %v", err)
	}
}
