package tracepoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// needRoot skips where eBPF programs cannot be loaded: run the tests in a
// VM with `go test -exec 'vmrunner exec --kernel 6.1 --'` (see README.md).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs: go test -exec 'vmrunner exec --kernel 6.1 --'")
	}
}

// readEvent calls getpid until the ring buffer has an event, or fails after
// a while: the event is sent by the program, so one call is enough, but a
// loaded machine gets some slack.
func readEvent(t *testing.T, events *ebpf.Map) getpidEvent {
	t.Helper()
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		t.Fatalf("open ring buffer: %v", err)
	}
	defer rd.Close()
	syscall.Getpid() // the tracepoint fires on this call
	rd.SetDeadline(time.Now().Add(30 * time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("read ring buffer: %v", err)
	}
	var e getpidEvent
	if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &e); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	return e
}

// TestGetpidEvent loads getpid.c, attaches it to the
// syscalls:sys_enter_getpid tracepoint, calls getpid and reads the event
// back from the ring buffer.
func TestGetpidEvent(t *testing.T) {
	needRoot(t)
	spec, err := loadGetpid()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["target_tgid"].Set(uint32(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	var objs getpidObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	defer objs.Close()
	tp, err := link.Tracepoint("syscalls", "sys_enter_getpid", objs.OnGetpid, nil)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer tp.Close()

	e := readEvent(t, objs.Events)
	if int(e.Tgid) != os.Getpid() || e.Pid == 0 {
		t.Errorf("event %+v, want tgid %d", e, os.Getpid())
	}
}

// TestLoopHelper does the same with a program that sums 0..99 with
// bpf_loop, which kernels have since 5.17: where the kernel lacks it, the
// test is skipped, as cilium/ebpf's features package tells.
func TestLoopHelper(t *testing.T) {
	needRoot(t)
	err := features.HaveProgramHelper(ebpf.TracePoint, asm.FnLoop)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("no bpf_loop on this kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadLoop()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["target_tgid"].Set(uint32(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	var objs loopObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	defer objs.Close()
	tp, err := link.Tracepoint("syscalls", "sys_enter_getpid", objs.SumWithLoop, nil)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer tp.Close()

	e := readEvent(t, objs.Events)
	if int(e.Tgid) != os.Getpid() || e.Value != 99*100/2 {
		t.Errorf("event %+v, want tgid %d and the sum 4950", e, os.Getpid())
	}
}
