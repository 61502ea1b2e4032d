package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
)

// The gRPC service is written by hand, without protoc: messages are raw
// bytes carried by rawCodec, and the service descriptor below is what
// protoc-gen-go-grpc would generate for
//
//	service Echo {
//	  rpc Unary(Msg) returns (Msg);
//	  rpc Stream(Msg) returns (stream Msg);
//	}
const (
	grpcUnaryMethod  = "/workload.Echo/Unary"
	grpcStreamMethod = "/workload.Echo/Stream"
)

// msg is a gRPC message: its bytes, as they are.
type msg struct{ b []byte }

// rawCodec marshals *msg as its bytes. Both sides force it, so the
// content type is application/grpc+raw.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*msg)
	if !ok {
		return nil, fmt.Errorf("marshal %T: expected *msg", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*msg)
	if !ok {
		return fmt.Errorf("unmarshal into %T: expected *msg", v)
	}
	m.b = data.Materialize()
	return nil
}

type echoServer interface{}

type echo struct{ messages int }

var echoDesc = grpc.ServiceDesc{
	ServiceName: "workload.Echo",
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in msg
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &msg{b: append([]byte("echo:"), in.b...)}, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			var in msg
			if err := stream.RecvMsg(&in); err != nil {
				return err
			}
			for i := range srv.(*echo).messages {
				if err := stream.SendMsg(&msg{b: []byte("part:" + strconv.Itoa(i))}); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

// serveGRPC serves the Echo service on ln until the returned stop is
// called. The workload runs one server for unary and one for streaming
// calls, so that the instrumentation can tell them apart by port.
func serveGRPC(ln net.Listener, cfg ServerConfig, wg *sync.WaitGroup) func() error {
	messages := cfg.StreamMessages
	if messages <= 0 {
		messages = 3
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
	srv.RegisterService(&echoDesc, &echo{messages: messages})
	wg.Go(func() { _ = srv.Serve(ln) })
	return func() error {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Stop()
			<-done
		}
		return nil
	}
}

type grpcClient struct {
	unary, stream *grpc.ClientConn
}

func newGRPCClient(unaryAddr, streamAddr string) (*grpcClient, error) {
	conn := func(addr string) (*grpc.ClientConn, error) {
		c, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			return nil, fmt.Errorf("grpc client: %w", err)
		}
		return c, nil
	}
	u, err := conn(unaryAddr)
	if err != nil {
		return nil, err
	}
	s, err := conn(streamAddr)
	if err != nil {
		u.Close()
		return nil, err
	}
	return &grpcClient{unary: u, stream: s}, nil
}

// do makes a unary call on even n and a streaming call on odd n. It counts
// what the instrumentation sees: "unary calls", "unary responses" (response
// messages), "unary finished" (trailers), and the same for "stream".
func (g *grpcClient) do(ctx context.Context, n int, messages int, t *tally) error {
	req := &msg{b: []byte("hello " + strconv.Itoa(n))}
	start := time.Now()
	if n%2 == 0 {
		var resp msg
		if err := g.unary.Invoke(ctx, grpcUnaryMethod, req, &resp); err != nil {
			return fmt.Errorf("grpc unary: %w", err)
		}
		t.ok(time.Since(start), "unary calls", "unary responses", "unary finished")
		return nil
	}
	st, err := g.stream.NewStream(ctx, &echoDesc.Streams[0], grpcStreamMethod)
	if err != nil {
		return fmt.Errorf("grpc stream: %w", err)
	}
	if err := st.SendMsg(req); err != nil {
		return fmt.Errorf("grpc stream send: %w", err)
	}
	if err := st.CloseSend(); err != nil {
		return fmt.Errorf("grpc stream close: %w", err)
	}
	got := 0
	for {
		var resp msg
		err := st.RecvMsg(&resp)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("grpc stream receive: %w", err)
		}
		got++
	}
	if got != messages {
		return fmt.Errorf("grpc stream: got %d messages, want %d", got, messages)
	}
	t.ok(time.Since(start), "stream calls", "stream finished")
	t.add("stream responses", int64(got))
	return nil
}

func (g *grpcClient) close() error {
	return errors.Join(g.unary.Close(), g.stream.Close())
}
