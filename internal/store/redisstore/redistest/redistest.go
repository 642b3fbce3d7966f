// Package redistest starts real redis-server processes for tests, on free
// loopback ports, with no persistence: single servers, replicas of them,
// and Sentinel clusters (StartSentinel). Tests that need Redis fail with a
// pointer to `make deps` when redis-server is not installed, or skip when
// GATEHOUSE_SKIP_REDIS=1.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SkipEnv names the environment variable that, set to 1, makes the tests
// that need Redis skip instead of run.
const SkipEnv = "GATEHOUSE_SKIP_REDIS"

const (
	// startTimeout bounds how long a server may take to answer PING.
	startTimeout = 10 * time.Second
	// startAttempts is how many free ports are tried: another process can
	// take the port between our probe and the server's bind.
	startAttempts = 5
	pollInterval  = 10 * time.Millisecond
	// linkTimeout bounds how long a replica may take to sync with its
	// master.
	linkTimeout = 10 * time.Second
)

// Config configures a server. The zero value is a standalone server without
// a password.
type Config struct {
	// Password, when set, is required from clients (--requirepass) and
	// given to the master (--masterauth), which must have the same one.
	Password string
	// ReplicaOf, when set, is the host:port of the master the server
	// replicates (--replicaof). Start returns once the replica has synced
	// with it.
	ReplicaOf string
}

// Server is a running redis-server child process. Its methods are safe for
// concurrent use.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
	// Password is Config.Password.
	Password string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	out  *lockedBuffer // the server's log
}

// Start starts a server that t's cleanup stops. It fails t if redis-server
// is missing (skips it under GATEHOUSE_SKIP_REDIS=1) or does not start.
// Starting takes a few milliseconds; a package with many tests should share
// one server through Shared.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := lookPath(t)
	s, err := start(bin, cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	if cfg.ReplicaOf != "" {
		if err := s.waitLink(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// lookPath returns the path of redis-server, or ends t.
func lookPath(t testing.TB) string {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that needs redis-server", SkipEnv)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (%v): run `make deps` to install it, or set %s=1 to skip the tests that need it", err, SkipEnv)
	}
	return bin
}

// start starts redis-server with its files in dir and waits until it
// answers.
func start(bin string, cfg Config, dir string) (*Server, error) {
	s, err := onFreePort(func(port int) (*Server, error) { return startOn(bin, cfg, dir, port) })
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	return s, nil
}

// onFreePort runs startOn with a free port, and again with another one
// while the port was taken in between.
func onFreePort(startOn func(port int) (*Server, error)) (*Server, error) {
	var errs []error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startOn(port)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// freePort returns a loopback port that was free a moment ago. Redis cannot
// listen on port 0 and report the port it got, so the test picks one.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOn(bin string, cfg Config, dir string, port int) (*Server, error) {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		// A replica's first sync goes through an RDB file in dir: with
		// diskless sync (the default since Redis 7), the master waits 5s
		// for more replicas to join, then streams nothing to the replica
		// until its first ACK, up to a second after the link is up.
		"--repl-diskless-sync", "no",
	}
	if cfg.Password != "" {
		args = append(args, "--requirepass", cfg.Password, "--masterauth", cfg.Password)
	}
	if cfg.ReplicaOf != "" {
		host, port, err := net.SplitHostPort(cfg.ReplicaOf)
		if err != nil {
			return nil, fmt.Errorf("ReplicaOf %q: %w", cfg.ReplicaOf, err)
		}
		args = append(args, "--replicaof", host, port)
	}
	return launch(bin, args, port, cfg.Password)
}

// launch runs bin with args, a server that listens on port, and waits until
// it answers PING.
func launch(bin string, args []string, port int, password string) (*Server, error) {
	s := &Server{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Password: password,
		cmd:      exec.Command(bin, args...),
		done:     make(chan struct{}),
		out:      &lockedBuffer{},
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := ping(s.Addr)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s on port %d exited: %s", bin, port, s.out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s on port %d did not answer PING within %v (%v); its log:\n%s", bin, port, startTimeout, err, s.out.String())
		}
	}
}

// ping checks that a server answers at addr. A NOAUTH error counts: the
// server is up and wants the password.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
}

// waitLink waits until a replica has synced with its master.
func (s *Server) waitLink() error {
	c := redis.NewClient(s.Options(0))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), linkTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s did not sync with its master within %v (INFO replication: %q, %v); its log:\n%s", s.Addr, linkTimeout, info, err, s.out.String())
		case <-tick.C:
		}
	}
}

// Log returns what the process has written so far.
func (s *Server) Log() string { return s.out.String() }

// stop kills the server (resuming it first if paused) and waits for it.
func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Pause stops the server process (SIGSTOP): it keeps its connections open
// and answers nothing, like a hung server. t's cleanup resumes it, if Resume
// has not.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause redis-server: %v", err)
	}
	t.Cleanup(s.Resume)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
}

// Options returns client options for the server's database db, with the
// timeouts a Gatehouse client should have: context deadlines honoured and
// reads and writes bounded.
func (s *Server) Options(db int) *redis.Options {
	return &redis.Options{
		Addr:                  s.Addr,
		Password:              s.Password,
		DB:                    db,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
	}
}

// Client returns a client of database db (0 to 15) that t's cleanup closes.
func (s *Server) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.Options(db))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Shared is one server for a whole test package, started by the first test
// that asks for it. Use it from TestMain:
//
//	var redisServer redistest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(redisServer.Run(m)) }
//
//	func TestX(t *testing.T) { srv := redisServer.Server(t); ... }
//
// Tests share its databases: each should use keys of its own.
type Shared struct {
	// Config configures the server; set it before the first Server call.
	Config Config

	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Server returns the shared server, starting it on the first call. It ends
// t as Start does if the server is missing or does not start.
func (sh *Shared) Server(t testing.TB) *Server {
	t.Helper()
	bin := lookPath(t)
	sh.once.Do(func() {
		if sh.dir, sh.err = os.MkdirTemp("", "redistest-"); sh.err != nil {
			return
		}
		sh.srv, sh.err = start(bin, sh.Config, sh.dir)
	})
	if sh.err != nil {
		t.Fatal(sh.err)
	}
	return sh.srv
}

// Run runs the package's tests (m.Run), then stops the server if one was
// started, and returns the exit code for os.Exit.
func (sh *Shared) Run(m *testing.M) int {
	code := m.Run()
	sh.Stop()
	return code
}

// Stop stops the server, if started, and removes its directory.
func (sh *Shared) Stop() {
	sh.once.Do(func() {}) // a later Server call must not start one
	if sh.srv != nil {
		sh.srv.stop()
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
	}
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
