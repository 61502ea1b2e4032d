package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"
)

// serveRedis serves GET, SET and DEL (and PING) over RESP on ln, from an
// in-memory map, until the returned stop is called.
func serveRedis(ln net.Listener, wg *sync.WaitGroup) func() error {
	var (
		mu    sync.Mutex
		data  = map[string][]byte{}
		conns = map[redcon.Conn]bool{}
	)
	handler := func(conn redcon.Conn, cmd redcon.Command) {
		mu.Lock()
		defer mu.Unlock()
		switch strings.ToUpper(string(cmd.Args[0])) {
		case "GET":
			if len(cmd.Args) != 2 {
				conn.WriteError("ERR wrong number of arguments for 'get' command")
				return
			}
			if v, ok := data[string(cmd.Args[1])]; ok {
				conn.WriteBulk(v)
			} else {
				conn.WriteNull()
			}
		case "SET":
			if len(cmd.Args) != 3 {
				conn.WriteError("ERR wrong number of arguments for 'set' command")
				return
			}
			data[string(cmd.Args[1])] = append([]byte(nil), cmd.Args[2]...)
			conn.WriteString("OK")
		case "DEL":
			n := 0
			for _, k := range cmd.Args[1:] {
				if _, ok := data[string(k)]; ok {
					delete(data, string(k))
					n++
				}
			}
			conn.WriteInt(n)
		case "HELLO":
			// What Redis 7 answers to HELLO 2: its properties.
			conn.WriteArray(14)
			for _, kv := range []string{"server", "redis", "version", "7.0.0"} {
				conn.WriteBulkString(kv)
			}
			conn.WriteBulkString("proto")
			conn.WriteInt(2)
			conn.WriteBulkString("id")
			conn.WriteInt(1)
			for _, kv := range []string{"mode", "standalone", "role", "master"} {
				conn.WriteBulkString(kv)
			}
			conn.WriteBulkString("modules")
			conn.WriteArray(0)
		case "PING":
			conn.WriteString("PONG")
		default:
			conn.WriteError("ERR unknown command '" + string(cmd.Args[0]) + "'")
		}
	}
	accept := func(conn redcon.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		conns[conn] = true
		return true
	}
	closed := func(conn redcon.Conn, _ error) {
		mu.Lock()
		defer mu.Unlock()
		delete(conns, conn)
	}
	wg.Go(func() { _ = redcon.Serve(ln, handler, accept, closed) })
	return func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		return err
	}
}

type redisClient struct {
	c *redis.Client
	// conns counts connections: go-redis sends HELLO on each one.
	conns atomic.Int64
}

func newRedisClient(addr string, conns int) (*redisClient, error) {
	r := &redisClient{}
	r.c = redis.NewClient(&redis.Options{
		Addr: addr,
		// RESP2 and no CLIENT SETINFO: the connection handshake sends
		// no command, so every command on the wire is one the load
		// generator counted.
		Protocol:        2,
		DisableIdentity: true,
		PoolSize:        conns,
		OnConnect: func(context.Context, *redis.Conn) error {
			r.conns.Add(1)
			return nil
		},
	})
	return r, nil
}

// do issues SET, GET or DEL on one of a few keys, chosen by rng, and counts
// the command and the type of its reply: "reply status" (SET), "reply
// bulk" (GET, hit or miss) and "reply integer" (DEL).
func (r *redisClient) do(ctx context.Context, _ int, rng *rand.Rand, t *tally) error {
	key := "key:" + strconv.Itoa(rng.IntN(16))
	start := time.Now()
	switch rng.IntN(3) {
	case 0:
		if err := r.c.Set(ctx, key, "value", 0).Err(); err != nil {
			return fmt.Errorf("redis SET: %w", err)
		}
		t.ok(time.Since(start), "SET", "reply status")
	case 1:
		if err := r.c.Get(ctx, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("redis GET: %w", err)
		}
		t.ok(time.Since(start), "GET", "reply bulk")
	default:
		if err := r.c.Del(ctx, key).Err(); err != nil {
			return fmt.Errorf("redis DEL: %w", err)
		}
		t.ok(time.Since(start), "DEL", "reply integer")
	}
	return nil
}

// handshakes counts the HELLO command go-redis sends on each new
// connection, and its array reply.
func (r *redisClient) handshakes(t *tally) {
	n := r.conns.Load()
	t.add("HELLO", n)
	t.add("reply array", n)
}

func (r *redisClient) close() error { return r.c.Close() }
