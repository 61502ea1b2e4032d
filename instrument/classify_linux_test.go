package instrument

import (
	"encoding/binary"
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
)

// h2frame is an HTTP/2 frame header and payload.
func h2frame(typ, flags byte, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 1}
	return append(b, payload...)
}

// pgMsg is a PostgreSQL frontend message.
func pgMsg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// TestClassifiers writes crafted messages on real loopback sockets whose
// server port is registered with a protocol, and checks what the real
// programs in the host kernel count for each. Needs root, kernel BTF and
// tracefs.
func TestClassifiers(t *testing.T) {
	requireBPF(t)
	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	tests := []struct {
		name   string
		proto  Protocol
		role   Role
		server bool // written by the server side
		data   []byte
		broken bool
		want   string // Count.Key; "" means nothing counted
		n      uint64
	}{
		{"http request", HTTP, Plain, false, []byte("GET /api/users?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), false, "GET /api/users", 1},
		{"http post", HTTP, Plain, false, []byte("POST /api/orders HTTP/1.1\r\n\r\n"), false, "POST /api/orders", 1},
		{"http status", HTTP, Plain, true, []byte("HTTP/1.1 503 Service Unavailable\r\n\r\n"), false, "status 503", 1},
		{"http status broken", HTTP, Plain, true, []byte("HTTP/1.1 503 Service Unavailable\r\n\r\n"), true, "status 50", 1},
		{"http garbage", HTTP, Plain, false, []byte("hello"), false, "unclassified", 1},
		{"grpc client preface+headers", GRPC, GRPCUnary, false, concat(preface, h2frame(4, 0, nil), h2frame(1, 4, []byte("hpack")), h2frame(0, 1, []byte("data"))), false, "unary calls", 1},
		{"grpc two calls", GRPC, GRPCStream, false, concat(h2frame(1, 4, []byte("a")), h2frame(0, 1, nil), h2frame(1, 4, []byte("b"))), false, "stream calls", 2},
		{"grpc server data", GRPC, GRPCStream, true, concat(h2frame(1, 4, []byte("h")), h2frame(0, 0, []byte("m1")), h2frame(0, 0, []byte("m2")), h2frame(1, 5, []byte("t"))), false, "stream responses", 2},
		{"grpc server trailers", GRPC, GRPCUnary, true, concat(h2frame(1, 4, []byte("h")), h2frame(0, 0, []byte("m1")), h2frame(1, 5, []byte("t"))), false, "unary finished", 1},
		{"pg query", PG, Plain, false, pgMsg('Q', "select 1\x00"), false, "SELECT simple", 1},
		{"pg parse unnamed", PG, Plain, false, pgMsg('P', "\x00UPDATE items SET a = $1\x00\x00\x00"), false, "UPDATE extended", 1},
		{"pg parse named", PG, Plain, false, pgMsg('P', "stmt_1\x00INSERT INTO t VALUES ($1)\x00\x00\x00"), false, "INSERT extended", 1},
		{"pg startup ignored", PG, Plain, false, []byte{0, 0, 0, 8, 0, 3, 0, 0}, false, "", 0},
		{"redis command", Redis, Plain, false, []byte("*2\r\n$3\r\nget\r\n$1\r\nk\r\n"), false, "GET", 1},
		{"redis long array", Redis, Plain, false, []byte("*12\r\n$5\r\nhello\r\n$1\r\n2\r\n"), false, "HELLO", 1},
		{"redis reply", Redis, Plain, true, []byte("$-1\r\n"), false, "reply bulk", 1},
		{"redis error", Redis, Plain, true, []byte("-ERR x\r\n"), false, "reply error", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			obs, err := Load(Config{TGID: uint32(os.Getpid()), Ports: []Port{{port, tt.proto, tt.role}}, BrokenStatus: tt.broken})
			if err != nil {
				t.Fatal(err)
			}
			defer obs.Close()
			client, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			w, r := client, server
			if tt.server {
				w, r = server, client
			}
			if _, err := w.Write(tt.data); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(tt.data))
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
			counts, err := obs.Counts()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]uint64{}
			for _, c := range counts {
				got[c.Key()] += c.N
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("counted %v, want nothing", got)
				}
				return
			}
			if got[tt.want] != tt.n {
				t.Errorf("counted %v, want %s=%d", got, tt.want, tt.n)
			}
		})
	}
}

func requireBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("needs kernel BTF")
	}
	if _, err := os.Stat("/sys/kernel/tracing/events/syscalls"); err != nil {
		if _, err := os.Stat("/sys/kernel/debug/tracing/events/syscalls"); err != nil {
			t.Skip("needs tracefs with syscall events (mount -t tracefs tracefs /sys/kernel/tracing)")
		}
	}
}

// TestVerifierComplexity loads both builds in the host kernel and keeps the
// instructions the verifier processes under 131072, the limit of kernels
// before 5.2 (the frame walk's counters in registers once took 366k).
func TestVerifierComplexity(t *testing.T) {
	requireBPF(t)
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"observe": loadObserve, "observeLegacy": loadObserveLegacy,
	} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
			Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
		})
		if err != nil {
			t.Fatal(err)
		}
		for prog, p := range coll.Programs {
			m := processedRE.FindStringSubmatch(p.VerifierLog)
			if m == nil {
				t.Errorf("%s/%s: no statistics in the verifier log:\n%s", name, prog, p.VerifierLog)
				continue
			}
			n, _ := strconv.Atoi(m[1])
			if n >= 131072 {
				t.Errorf("%s/%s: verifier processed %d instructions, over the pre-5.2 limit of 131072", name, prog, n)
			}
			t.Logf("%s/%s: %d instructions processed", name, prog, n)
		}
		coll.Close()
	}
}

var processedRE = regexp.MustCompile(`processed (\d+) insns`)
