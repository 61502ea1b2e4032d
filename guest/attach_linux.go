package guest

import (
	"fmt"
	"io"
	"net"
	"path"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// rootCgroup is where cgroup programs are attached: the agent mounts
// cgroup2 there.
const rootCgroup = "/sys/fs/cgroup"

// attachProgram attaches prog, loaded from ps, to the hook its section
// names, and detaches it at once: it proves that the kernel can run the
// program where its loader would put it, which loading alone does not
// (tcx links came in 6.6 and load fine before; fentry loads on arm64
// kernels whose trampolines cannot attach to kernel functions). It returns
// the hook and whether it was tried: a program vmrunner has no hook for
// gets a note saying so instead.
func attachProgram(ps *ebpf.ProgramSpec, prog, target *ebpf.Program, uprobeBinary string) (hook string, tried bool, err error) {
	hook, attach := hookFor(ps, prog, target, uprobeBinary)
	if attach == nil {
		return hook, false, nil
	}
	l, err := attach()
	if err != nil {
		return hook, true, fmt.Errorf("%s: %w", hook, err)
	}
	if l != nil {
		if err := l.Close(); err != nil {
			return hook, true, fmt.Errorf("%s: detach: %w", hook, err)
		}
	}
	return hook, true, nil
}

// hookFor returns the hook of a program and the function that attaches it;
// a nil function means there is none, and the hook says why.
func hookFor(ps *ebpf.ProgramSpec, prog, target *ebpf.Program, uprobeBinary string) (string, func() (io.Closer, error)) {
	sec := ps.SectionName
	switch ps.Type {
	case ebpf.Kprobe:
		switch {
		case strings.HasPrefix(sec, "kprobe/"):
			return "kprobe " + ps.AttachTo, func() (io.Closer, error) { return link.Kprobe(ps.AttachTo, prog, nil) }
		case strings.HasPrefix(sec, "kretprobe/"):
			return "kretprobe " + ps.AttachTo, func() (io.Closer, error) { return link.Kretprobe(ps.AttachTo, prog, nil) }
		}
		if kind := sectionKind(sec); kind == "uprobe" || kind == "uretprobe" {
			return uprobeHook(kind, ps.AttachTo, prog, uprobeBinary)
		}
		return "not attached: vmrunner attaches kprobe/, kretprobe/, uprobe/ and uretprobe/ sections, not " + sectionKind(sec), nil
	case ebpf.TracePoint:
		group, name, ok := strings.Cut(ps.AttachTo, "/")
		if !ok {
			return "not attached: tracepoint section without group/name", nil
		}
		return "tracepoint " + ps.AttachTo, func() (io.Closer, error) { return link.Tracepoint(group, name, prog, nil) }
	case ebpf.RawTracepoint, ebpf.RawTracepointWritable:
		return "raw_tp " + ps.AttachTo, func() (io.Closer, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: ps.AttachTo, Program: prog})
		}
	case ebpf.Tracing:
		switch ps.AttachType {
		case ebpf.AttachTraceFEntry, ebpf.AttachTraceFExit, ebpf.AttachModifyReturn, ebpf.AttachTraceRawTp:
			return sectionKind(sec) + " " + ps.AttachTo, func() (io.Closer, error) {
				return link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ps.AttachType})
			}
		}
		return "not attached: vmrunner has no hook for " + sectionKind(sec), nil
	case ebpf.LSM:
		return "lsm " + ps.AttachTo, func() (io.Closer, error) { return link.AttachLSM(link.LSMOptions{Program: prog}) }
	case ebpf.Extension:
		return "freplace " + ps.AttachTo, func() (io.Closer, error) { return link.AttachFreplace(target, ps.AttachTo, prog) }
	case ebpf.XDP:
		return "xdp on lo", func() (io.Closer, error) {
			lo, err := loopback()
			if err != nil {
				return nil, err
			}
			return link.AttachXDP(link.XDPOptions{Program: prog, Interface: lo})
		}
	case ebpf.SchedCLS, ebpf.SchedACT:
		switch ps.AttachType {
		case ebpf.AttachTCXIngress, ebpf.AttachTCXEgress:
			return sectionKind(sec) + " on lo", func() (io.Closer, error) {
				lo, err := loopback()
				if err != nil {
					return nil, err
				}
				return link.AttachTCX(link.TCXOptions{Program: prog, Interface: lo, Attach: ps.AttachType})
			}
		}
		return "tc ingress on lo", func() (io.Closer, error) {
			lo, err := loopback()
			if err != nil {
				return nil, err
			}
			return attachTC(lo, prog)
		}
	case ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr, ebpf.CGroupSockopt, ebpf.CGroupSysctl, ebpf.CGroupDevice, ebpf.SockOps:
		return sectionKind(sec) + " on the root cgroup", func() (io.Closer, error) {
			return link.AttachCgroup(link.CgroupOptions{Path: rootCgroup, Attach: ps.AttachType, Program: prog})
		}
	case ebpf.SocketFilter:
		return "socket filter on a UDP socket", func() (io.Closer, error) {
			conn, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			defer conn.Close()
			return nil, link.AttachSocketFilter(conn.(*net.UDPConn), prog)
		}
	case ebpf.StructOps:
		return "attached with its struct_ops map: see the object's result", nil
	}
	return "not attached: vmrunner has no hook for " + ps.Type.String() + " programs", nil
}

// sectionKind is the part of a section name before the first slash.
func sectionKind(sec string) string {
	kind, _, _ := strings.Cut(sec, "/")
	return kind
}

func loopback() (int, error) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return 0, fmt.Errorf("find lo: %w", err)
	}
	return lo.Index, nil
}

// attachStructOps registers each struct_ops map of the object (a
// congestion control, a scheduler) and unregisters it; it returns what
// failed.
func attachStructOps(l *objectLoader) []string {
	var failed []string
	for name, ms := range l.spec.Maps {
		m := l.maps[name]
		if ms.Type != ebpf.StructOpsMap || m == nil {
			continue
		}
		lk, err := link.AttachStructOps(link.StructOpsOptions{Map: m})
		if err == nil {
			err = lk.Close()
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("struct_ops map %s: %v", name, err))
		}
	}
	return failed
}

// uprobeHook attaches a uprobe/SYMBOL or uretprobe/SYMBOL program (libbpf's
// uprobe/BINARY:SYMBOL too, the binary being the matrix's) to binary.
func uprobeHook(kind, attachTo string, prog *ebpf.Program, binary string) (string, func() (io.Closer, error)) {
	sym := attachTo
	if i := strings.LastIndexByte(sym, ':'); i >= 0 {
		sym = sym[i+1:]
	}
	if binary == "" || sym == "" {
		return "not attached: a " + kind + " needs the executable it probes: uprobe_binary: FILE in the matrix", nil
	}
	return kind + " " + sym + " in " + path.Base(binary), func() (io.Closer, error) {
		ex, err := link.OpenExecutable(binary)
		if err != nil {
			return nil, err
		}
		if kind == "uretprobe" {
			return ex.Uretprobe(sym, prog, nil)
		}
		return ex.Uprobe(sym, prog, nil)
	}
}
