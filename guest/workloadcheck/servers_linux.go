package workloadcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vmrunner/vmrunner/protocol"
)

// The real servers: PostgreSQL and Redis from Debian's packages, packed by
// the host at their packages' paths (internal/servers) and started here the
// way their packages start them: initdb into a tmpfs and postgres -D as
// the postgres user, redis-server with a configuration file.

const (
	// serverStartLimit bounds each server's start, initdb included: 79 s
	// on x86_64 and over 2 min on arm64 under TCG on a machine at load
	// 25-35 (initdb's bootstrap and its import of ICU's collations).
	serverStartLimit = 4 * time.Minute
	// serverStopLimit is how long a server has to stop before SIGKILL.
	serverStopLimit = 10 * time.Second
	// maxServerLog is how much of each log is kept as an artifact.
	maxServerLog = 256 << 10
	// errorLogLines are the lines of a log quoted when a server fails.
	errorLogLines = 15
	// postgresUID is the postgres user's: PostgreSQL refuses to run as root.
	postgresUID = 70
)

// serversDir holds the servers' data and logs (a tmpfs).
var serversDir = "/tmp/vmrunner-servers"

// realServers are the running servers.
type realServers struct {
	PGAddr, RedisAddr string
	details           map[string]protocol.WorkloadServer
	procs             []*serverProc
	logs              []string // log files, artifacts
}

// serverProc is one server process.
type serverProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // set when exited is closed
}

// startRealServers starts the servers the host packed
// (protocol.ServersManifestPath); conf are extra configuration lines by
// server. On error the servers started are stopped and the error quotes
// the failing server's log.
func startRealServers(ctx context.Context, conf map[string][]string) (_ *realServers, err error) {
	data, err := os.ReadFile(protocol.ServersManifestPath)
	if err != nil {
		return nil, fmt.Errorf("real servers: %w (the host packs them for a workload check)", err)
	}
	var m protocol.WorkloadServers
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", protocol.ServersManifestPath, err)
	}
	if m.Postgres == nil || m.Redis == nil {
		return nil, fmt.Errorf("%s names no postgres or no redis", protocol.ServersManifestPath)
	}
	s := &realServers{details: map[string]protocol.WorkloadServer{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(serversDir, 0o755); err != nil {
		return s, err
	}
	start := time.Now()
	if s.PGAddr, err = s.startPostgres(ctx, m.Postgres.Bin, conf["postgres"]); err != nil {
		return s, err
	}
	s.details["postgres"] = protocol.WorkloadServer{Package: m.Postgres.Package, Version: m.Postgres.Version, StartMS: ms(time.Since(start))}
	start = time.Now()
	if s.RedisAddr, err = s.startRedis(ctx, m.Redis.Bin, conf["redis"]); err != nil {
		return s, err
	}
	s.details["redis"] = protocol.WorkloadServer{Package: m.Redis.Package, Version: m.Redis.Version, StartMS: ms(time.Since(start))}
	return s, nil
}

// serverTGIDs are the processes whose writes the instrumentation must see
// besides this one: redis-server's (PostgreSQL's backends answer, and
// only the client's messages are counted).
func (s *realServers) serverTGIDs() []uint32 {
	var out []uint32
	for _, p := range s.procs {
		if p.name == "redis-server" {
			out = append(out, uint32(p.cmd.Process.Pid))
		}
	}
	return out
}

// startPostgres runs initdb and postgres as the postgres user and waits
// until the workload database answers.
func (s *realServers) startPostgres(ctx context.Context, bin string, extra []string) (string, error) {
	if err := addUser("postgres", postgresUID); err != nil {
		return "", err
	}
	dir := filepath.Join(serversDir, "postgres")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(dir, postgresUID, postgresUID); err != nil {
		return "", err
	}
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: postgresUID, Gid: postgresUID}, Setpgid: true}
	env := []string{"PATH=" + filepath.Dir(bin) + ":/bin", "TZ=UTC", "LANG=C", "HOME=" + dir}
	deadline, cancel := context.WithTimeout(ctx, serverStartLimit)
	defer cancel()

	// A check before this one in the VM (beyla after workload) made the
	// cluster: initdb is what takes long, so it is kept; the settings
	// are this check's own (vmrunner.conf, included).
	initLog := filepath.Join(dir, "initdb.log")
	s.logs = append(s.logs, initLog)
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := os.RemoveAll(data); err != nil {
			return "", err
		}
		lf, err := os.Create(initLog)
		if err != nil {
			return "", err
		}
		initdb := exec.CommandContext(deadline, filepath.Join(filepath.Dir(bin), "initdb"), "-D", data, "-U", "workload",
			"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
		initdb.Env, initdb.Dir, initdb.SysProcAttr = env, dir, cred
		initdb.Stdout, initdb.Stderr = lf, lf
		err = initdb.Run()
		lf.Close()
		if err != nil {
			return "", fmt.Errorf("initdb: %w; its last lines:\n%s", err, lastLines(initLog, errorLogLines))
		}
		if err := appendLines(filepath.Join(data, "postgresql.conf"), []string{"include_if_exists = 'vmrunner.conf'"}); err != nil {
			return "", err
		}
	}

	port, err := freePort(ctx)
	if err != nil {
		return "", err
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", port),
		fmt.Sprintf("unix_socket_directories = '%s'", dir),
		"max_connections = 20",
		"shared_buffers = 16MB",
		"dynamic_shared_memory_type = mmap",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"jit = off",
		"timezone = 'UTC'",
		"log_timezone = 'UTC'",
		"log_destination = 'stderr'",
		"log_connections = on",
		"log_statement = 'all'",
	}
	vconf := filepath.Join(data, "vmrunner.conf")
	if err := os.Remove(vconf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := appendLines(vconf, append(conf, extra...)); err != nil {
		return "", err
	}
	p, err := s.spawn("postgres", filepath.Join(dir, "postgres.log"), cred, env, bin, "-D", data)
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err = waitReady(deadline, p, func(ctx context.Context) error { return setupDatabase(ctx, addr) })
	return addr, err
}

// setupDatabase makes the database and table the SQL load uses: workload,
// items(id int4, name text) with ids 1 to 1000.
func setupDatabase(ctx context.Context, addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://workload@%s:%s/postgres?sslmode=disable", host, port))
	if err != nil {
		return err
	}
	var exists bool
	err = c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'workload')").Scan(&exists)
	if err == nil && !exists {
		_, err = c.Exec(ctx, "CREATE DATABASE workload")
	}
	c.Close(ctx)
	if err != nil {
		return err
	}
	c, err = pgx.Connect(ctx, fmt.Sprintf("postgres://workload@%s:%s/workload?sslmode=disable", host, port))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE TABLE IF NOT EXISTS items (id int4, name text); "+
		"INSERT INTO items SELECT i, 'item-' || i FROM generate_series(1, 1000) AS i WHERE NOT EXISTS (SELECT 1 FROM items)")
	return err
}

// startRedis runs redis-server with a configuration file and waits for
// its PONG.
func (s *realServers) startRedis(ctx context.Context, bin string, extra []string) (string, error) {
	dir := filepath.Join(serversDir, "redis")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := freePort(ctx)
	if err != nil {
		return "", err
	}
	logFile := filepath.Join(dir, "redis.log")
	conf := []string{
		"bind 127.0.0.1",
		fmt.Sprintf("port %d", port),
		"protected-mode no",
		"daemonize no",
		"supervised no",
		`save ""`,
		"appendonly no",
		"dir " + dir,
		"logfile " + logFile,
		"loglevel verbose",
	}
	confFile := filepath.Join(dir, "redis.conf")
	if err := appendLines(confFile, append(conf, extra...)); err != nil {
		return "", err
	}
	deadline, cancel := context.WithTimeout(ctx, serverStartLimit)
	defer cancel()
	// Redis logs into its logfile once configured; before that (a config
	// it refuses) it writes to stderr, kept beside it.
	p, err := s.spawn("redis-server", filepath.Join(dir, "redis-stderr.log"), nil, []string{"PATH=/bin"}, bin, confFile)
	if err != nil {
		return "", err
	}
	s.logs = append(s.logs, logFile)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err = waitReady(deadline, p, func(ctx context.Context) error { return redisPing(ctx, addr) })
	return addr, err
}

// redisPing sends PING and wants +PONG.
func redisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// spawn starts a server with its stdout and stderr in logFile.
func (s *realServers) spawn(name, logFile string, attr *syscall.SysProcAttr, env []string, bin string, args ...string) (*serverProc, error) {
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	if attr != nil {
		if err := os.Chown(logFile, int(attr.Credential.Uid), int(attr.Credential.Gid)); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.SysProcAttr, cmd.Stdout, cmd.Stderr = env, attr, lf, lf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &serverProc{name: name, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	s.procs = append(s.procs, p)
	s.logs = append(s.logs, logFile)
	return p, nil
}

// waitReady polls ready until it succeeds, p exits or ctx ends; the error
// quotes the server's log.
func waitReady(ctx context.Context, p *serverProc, ready func(context.Context) error) error {
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		last = ready(attempt)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while starting (%v); its last log lines:\n%s", p.name, p.err, p.lastLines())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (%v); its last log lines:\n%s", p.name, serverStartLimit, last, p.lastLines())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastLines are the last lines of the server's logs: its stderr, and for
// Redis the logfile it writes once configured.
func (p *serverProc) lastLines() string {
	out := lastLines(p.log, errorLogLines)
	if p.name == "redis-server" {
		if more := lastLines(filepath.Join(filepath.Dir(p.log), "redis.log"), errorLogLines); more != "" {
			out = strings.TrimRight(out+"\n"+more, "\n")
		}
	}
	return strings.TrimLeft(out, "\n")
}

// Close stops the servers, gently first.
func (s *realServers) Close() {
	for _, p := range s.procs {
		select {
		case <-p.exited:
			continue
		default:
		}
		// postgres: SIGINT is its fast shutdown; redis-server saves
		// nothing (save "") and exits on SIGTERM.
		sig := syscall.SIGTERM
		if p.name == "postgres" {
			sig = syscall.SIGINT
		}
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.exited:
		case <-time.After(serverStopLimit):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	s.procs = nil
}

// artifacts are the servers' logs, each cut to its last maxServerLog bytes.
func (s *realServers) artifacts(check string) []protocol.Artifact {
	if s == nil {
		return nil
	}
	var out []protocol.Artifact
	for _, f := range s.logs {
		data, err := tail(f, maxServerLog)
		if err != nil || len(data) == 0 {
			continue
		}
		out = append(out, protocol.Artifact{Check: check, Name: "workload/servers/" + filepath.Base(f), Data: string(data)})
	}
	return out
}

// tail reads the last n bytes of a file.
func tail(file string, n int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > n {
		if _, err := f.Seek(fi.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// lastLines returns the last n lines of a file, "" when it has none.
func lastLines(file string, n int) string {
	data, err := tail(file, 16<<10)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// appendLines appends lines to a configuration file.
func appendLines(file string, lines []string) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n# vmrunner\n" + strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// addUser gives the guest's /etc/passwd and /etc/group a user and group
// of that name and id, unless it has it: PostgreSQL looks its user up.
func addUser(name string, id int) error {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.HasPrefix(data, []byte(name+":")) || bytes.Contains(data, []byte("\n"+name+":")) {
		return nil
	}
	if err := os.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	if err := appendFile("/etc/passwd", fmt.Sprintf("%s:x:%d:%d:%s:%s:/bin/sh\n", name, id, id, name, serversDir)); err != nil {
		return err
	}
	return appendFile("/etc/group", fmt.Sprintf("%s:x:%d:\n", name, id))
}

func appendFile(file, s string) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
