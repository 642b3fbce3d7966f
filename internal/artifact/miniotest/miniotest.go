// Package miniotest starts real MinIO servers for tests, on free loopback
// ports, with their data in temporary directories. Tests that need MinIO
// fail with a pointer to `make deps` when the minio binary is missing, or
// skip when GATEHOUSE_SKIP_MINIO=1.
//
// A server takes a second or two to start: a package's tests should share
// one through Shared, each in buckets of its own (NewBucket), and call Main
// from TestMain so that the shared server is stopped and its data removed:
//
//	func TestMain(m *testing.M) { miniotest.Main(m) }
//
//	func TestX(t *testing.T) {
//		srv := miniotest.Shared(t)
//		bucket := srv.NewBucket(t)
//		...
//	}
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// SkipEnv names the environment variable that, set to 1, makes the tests
// that need MinIO skip instead of run.
const SkipEnv = "GATEHOUSE_SKIP_MINIO"

// Region is the region of every server.
const Region = "us-east-1"

const (
	// startTimeout bounds how long a server may take to report itself live.
	startTimeout = 30 * time.Second
	// startAttempts is how many pairs of free ports are tried: another
	// process can take a port between our probe and the server's bind.
	startAttempts = 5
	// stopTimeout is how long a server may take to exit on SIGTERM before
	// it is killed.
	stopTimeout = 5 * time.Second
	// bucketTimeout bounds NewBucket.
	bucketTimeout = 10 * time.Second
	pollInterval  = 25 * time.Millisecond
)

// Server is a running MinIO child process. Its methods are safe for
// concurrent use.
type Server struct {
	// Endpoint is the server's S3 API, "http://127.0.0.1:port".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string

	host     string // 127.0.0.1:port
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	out      *lockedBuffer // the server's log
	stopOnce sync.Once
}

// Start starts a server that t's cleanup stops, printing its log if t
// failed. It fails t if minio is missing (skips it under
// GATEHOUSE_SKIP_MINIO=1) or does not start. Use it for a test that stops
// the server; others should use Shared.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := lookPath(t)
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("minio log:\n%s", s.out.String())
		}
	})
	return s
}

// shared is the server of Shared: one per test binary.
var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the test binary's shared server, starting it on the first
// call. It ends t as Start does if the server is missing or does not start,
// and prints the server's log of t's run if t failed. Tests must not Stop
// it. Main stops it; without Main, it dies with the test binary (on Linux)
// and leaves its data in the temporary directory.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := lookPath(t)
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "miniotest-"); shared.err != nil {
			return
		}
		shared.srv, shared.err = start(bin, shared.dir)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	s := shared.srv
	mark := s.out.Len()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("minio log while %s ran:\n%s", t.Name(), s.out.since(mark))
		}
	})
	return s
}

// Main runs the package's tests, then stops the shared server if one was
// started and removes its data. Call it from TestMain; the test wrapper
// exits with m.Run's code when TestMain returns.
func Main(m *testing.M) {
	m.Run()
	shared.once.Do(func() {}) // a late Shared call must not start one
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// lookPath returns the path of minio, or ends t.
func lookPath(t testing.TB) string {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping a test that needs minio", SkipEnv)
	}
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("minio not found; run make deps (%v), or set %s=1 to skip the tests that need it", err, SkipEnv)
	}
	return bin
}

// findBinary looks for minio on PATH, then where `make deps` installs it:
// $(go env GOPATH)/bin.
func findBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var tried []string
	for _, dir := range gopath() {
		p := filepath.Join(dir, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		tried = append(tried, p)
	}
	if len(tried) == 0 {
		return "", errors.New("not on PATH, and GOPATH is unknown")
	}
	return "", fmt.Errorf("not on PATH, nor at %s", strings.Join(tried, ", "))
}

// gopath returns the GOPATH entries: go test does not always pass GOPATH
// down, so ask the go command, and fall back on its default.
func gopath() []string {
	if v := os.Getenv("GOPATH"); v != "" {
		return filepath.SplitList(v)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return filepath.SplitList(v)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		return []string{filepath.Join(home, "go")}
	}
	return nil
}

// start starts minio with its data in dir and waits until it is live.
func start(bin, dir string) (*Server, error) {
	user, secret := "gatehouse-"+randomHex(4), randomHex(16)
	var errs []error
	for range startAttempts {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		s, err := startOn(bin, dir, ports[0], ports[1], user, secret)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("start minio: %w", errors.Join(errs...))
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// MinIO cannot listen on port 0 and report the port it got, so the test
// picks them; all listeners stay open until all are picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startOn(bin, dir string, port, consolePort int, user, secret string) (*Server, error) {
	host := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{
		Endpoint:  "http://" + host,
		AccessKey: user,
		SecretKey: secret,
		host:      host,
		cmd: exec.Command(bin, "server", dir,
			"--address", host,
			"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort)),
		done: make(chan struct{}),
		out:  &lockedBuffer{},
	}
	s.cmd.Env = append(environ(),
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+secret,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()

	client := &http.Client{Timeout: time.Second}
	live := s.Endpoint + "/minio/health/live"
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := get(client, live)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("minio on port %d exited: %s", port, s.out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("minio on port %d not live within %v (%v); its log:\n%s", port, startTimeout, err, s.out.String())
		}
	}
}

// environ is the test's environment without MINIO_ variables, which would
// configure the server in ways the tests do not expect.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited within
// a few seconds. It waits for the process to exit, and may be called more
// than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Client returns a minio-go client of the server with its root
// credentials, for a test to set up or damage objects directly.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("minio.New(%s) error = %v", s.host, err)
	}
	return c
}

// bucketSeq numbers the buckets of a test binary.
var bucketSeq atomic.Int64

// NewBucket creates a bucket with a name no other test uses, even across
// runs against the same server, and returns its name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test-%d-%s", bucketSeq.Add(1), randomHex(4))
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), bucketTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region})
		if err == nil {
			return name
		}
		// A server that just went live may still be loading its state.
		if minio.ToErrorResponse(err).Code != "XMinioServerNotInitialized" {
			t.Fatalf("MakeBucket(%s) error = %v", name, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("MakeBucket(%s) error = %v (server not initialized within %v)", name, err, bucketTimeout)
		case <-tick.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
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

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// since returns what was written after the first n bytes.
func (b *lockedBuffer) since(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[min(n, b.buf.Len()):])
}
