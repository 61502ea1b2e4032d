package instrument

import (
	"github.com/cilium/ebpf/btf"

	"bytes"
	"fmt"
	"time"
)

// Protocol is a classified protocol; the values are those of bpf/observe.c.
type Protocol uint8

// Protocols.
const (
	HTTP  Protocol = 1
	GRPC  Protocol = 2
	PG    Protocol = 3
	Redis Protocol = 4
)

func (p Protocol) String() string {
	switch p {
	case HTTP:
		return "http"
	case GRPC:
		return "grpc"
	case PG:
		return "sql"
	case Redis:
		return "redis"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Role tells the kinds of gRPC calls apart by server port.
type Role uint8

// Roles.
const (
	Plain       Role = 0
	GRPCUnary   Role = 1
	GRPCStream  Role = 2
	roleUnknown Role = 255
)

// Kind is what a count counts; the values are those of bpf/observe.c.
type Kind uint8

// Kinds.
const (
	// Request is a client message: an HTTP request line, a SQL statement
	// (Status 'Q' simple or 'P' extended), a RESP command, a gRPC call.
	Request Kind = 1
	// Response is a server message: an HTTP status line (Status the
	// code), a RESP reply (Status its type byte).
	Response Kind = 2
	// GRPCData is a gRPC response message (a server DATA frame).
	GRPCData Kind = 3
	// GRPCEnd is a finished gRPC call (server trailers).
	GRPCEnd Kind = 4
	// Unclassified is a write on a workload socket that matched nothing.
	Unclassified Kind = 5
)

// Port is a server port of the workload and what it serves.
type Port struct {
	Port     uint16
	Protocol Protocol
	Role     Role
}

// Config says what to observe.
type Config struct {
	// TGID is the process whose writes are looked at: the clients'
	// (and the servers' when they run in it).
	TGID uint32
	// ServerTGIDs are more processes whose writes are looked at: servers
	// that run apart, like a real redis-server (at most 8).
	ServerTGIDs []uint32
	// Ports are the workload's server ports.
	Ports []Port
	// BrokenStatus selects a deliberately wrong HTTP status parser, to
	// test that validation catches a broken classifier.
	BrokenStatus bool
	// Legacy forces the bpf_probe_read build, the one for kernels
	// before 5.5, to test it on newer ones.
	Legacy bool
	// KernelTypes are the types the CO-RE relocations are made against;
	// nil reads the kernel's own BTF.
	KernelTypes *btf.Spec
}

// Count is one counter of the BPF map.
type Count struct {
	Protocol Protocol
	Kind     Kind
	Role     Role
	Status   uint16
	Op       string
	N        uint64
}

// Info says how the instrumentation was set up on this kernel.
type Info struct {
	// ProbeRead is the helper used to read user memory:
	// "bpf_probe_read_user" (5.5+) or "bpf_probe_read".
	ProbeRead string `json:"probe_read"`
	// Hooks are the attached tracepoints.
	Hooks []string `json:"hooks"`
	// Programs are the loaded programs' names.
	Programs []string `json:"programs"`
	// KernelBTF, Load and Attach are the time spent loading the
	// kernel's BTF, loading the programs and maps (the verifier), and
	// attaching the programs (perf events on tracepoints).
	KernelBTF time.Duration `json:"kernel_btf_ns"`
	Load      time.Duration `json:"load_ns"`
	Attach    time.Duration `json:"attach_ns"`
}

func cString(b []int8) string {
	u := make([]byte, len(b))
	for i, c := range b {
		u[i] = byte(c)
	}
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}

func cmpCount(a, b Count) int {
	switch {
	case a.Protocol != b.Protocol:
		return int(a.Protocol) - int(b.Protocol)
	case a.Kind != b.Kind:
		return int(a.Kind) - int(b.Kind)
	case a.Role != b.Role:
		return int(a.Role) - int(b.Role)
	case a.Status != b.Status:
		return int(a.Status) - int(b.Status)
	case a.Op < b.Op:
		return -1
	case a.Op > b.Op:
		return 1
	}
	return 0
}

// Key names c in the workload's vocabulary (workload.Result.Counts):
// "GET /api/users", "status 503", "unary calls", "SELECT extended", "SET",
// "reply bulk", or "unclassified".
func (c Count) Key() string {
	if c.Kind == Unclassified {
		return "unclassified"
	}
	switch c.Protocol {
	case HTTP:
		if c.Kind == Response {
			return fmt.Sprintf("status %d", c.Status)
		}
		return c.Op
	case GRPC:
		role := map[Role]string{GRPCUnary: "unary", GRPCStream: "stream"}[c.Role]
		if role == "" {
			role = fmt.Sprintf("role(%d)", c.Role)
		}
		switch c.Kind {
		case Request:
			return role + " calls"
		case GRPCData:
			return role + " responses"
		case GRPCEnd:
			return role + " finished"
		}
	case PG:
		switch c.Status {
		case 'Q':
			return c.Op + " simple"
		case 'P':
			return c.Op + " extended"
		}
	case Redis:
		if c.Kind == Response {
			if name, ok := respTypes[byte(c.Status)]; ok {
				return "reply " + name
			}
			return fmt.Sprintf("reply %q", rune(c.Status))
		}
		return c.Op
	}
	return fmt.Sprintf("kind(%d) status(%d) %s", c.Kind, c.Status, c.Op)
}

var respTypes = map[byte]string{'+': "status", '-': "error", ':': "integer", '$': "bulk", '*': "array"}

// Observed groups counts by protocol name and key.
func Observed(counts []Count) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, c := range counts {
		p := c.Protocol.String()
		if out[p] == nil {
			out[p] = map[string]int64{}
		}
		out[p][c.Key()] += int64(c.N)
	}
	return out
}
