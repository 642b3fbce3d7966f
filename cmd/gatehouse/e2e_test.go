package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/gatehouse-gw/gatehouse/internal/artifact/miniotest"
)

// binary is the gatehouse binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gatehouse")
	args := []string{"build", "-o", binary}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build gatehouse:", err)
		os.Exit(1)
	}
	// Runs the tests, then stops the MinIO server they shared; the exit
	// code is m.Run's.
	miniotest.Main(m)
	os.RemoveAll(dir)
}

// node is a gatehouse serve process started by a test.
type node struct {
	t      testing.TB
	cmd    *exec.Cmd
	proxy  string // http://host:port
	admin  string
	logs   *syncBuffer
	stdout *syncBuffer // the access log
	exited chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNode runs `gatehouse serve` on free loopback ports with its data in
// dataDir and waits until it has logged its listen addresses.
func startNode(t testing.TB, dataDir string, env []string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	n := &node{t: t, cmd: cmd, logs: &syncBuffer{}, stdout: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = n.stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
		close(n.exited)
	}()
	started := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Bytes()
			n.logs.Write(append(line, '\n'))
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "gatehouse started" {
				started <- rec
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { n.kill() })
	select {
	case rec := <-started:
		n.proxy = "http://" + rec["proxy"].(string)
		n.admin = "http://" + rec["admin"].(string)
	case <-n.exited:
		t.Fatalf("gatehouse exited before starting: %v\n%s", cmd.ProcessState, n.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not start within 30s:\n%s", n.logs)
	}
	return n
}

func (n *node) kill() {
	select {
	case <-n.exited:
	default:
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// stop sends SIGTERM and waits for the exit code.
func (n *node) stop() int {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("gatehouse did not exit within 30s of SIGTERM:\n%s", n.logs)
	}
	return n.cmd.ProcessState.ExitCode()
}

// cleanEnv is the test process's environment without gatehouse or sync
// variables, so that a developer's shell cannot change the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATEHOUSE_") || strings.HasPrefix(kv, "SYNC_") || strings.HasPrefix(kv, "ENABLE_CONSUL") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// cli runs a gatehouse client command against the node's admin API.
func (n *node) cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), "GATEHOUSE_ADMIN="+n.admin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run gatehouse %v: %v", args, err)
		}
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func httpDo(t *testing.T, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQuickStart(t *testing.T) {
	upstream := httptest.NewServer(httpbin.New())
	defer upstream.Close()
	n := startNode(t, t.TempDir(), nil)

	if code, body := httpDo(t, "GET", n.admin+"/healthz", ""); code != 200 {
		t.Fatalf("GET /healthz = %d %s, want 200", code, body)
	}
	if code, body := httpDo(t, "GET", n.admin+"/readyz", ""); code != 200 {
		t.Fatalf("GET /readyz = %d %s, want 200", code, body)
	}
	// The README's quick start: a route for the service, a replica that
	// registers itself, a request through the proxy.
	cfg := writeFile(t, "gatehouse.yaml", `
services:
  - name: client-service
routes:
  - name: client
    service: client-service
    paths: ["/client"]
    strip_prefix: true
`)
	if out, errOut, code := n.cli(t, "apply", "-f", cfg); code != 0 {
		t.Fatalf("gatehouse apply = exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, body := httpDo(t, "GET", n.proxy+"/client/get", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("GET /client/get with no replica = %d %s, want 503", code, body)
	}
	code, body := httpDo(t, "POST", n.admin+"/register", `{"service":"client-service","address":"`+upstream.URL+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /register = %d %s, want 201", code, body)
	}
	code, body = httpDo(t, "GET", n.proxy+"/client/get?x=1", "")
	if code != 200 {
		t.Fatalf("GET through proxy = %d %s, want 200", code, body)
	}
	var got struct {
		URL  string              `json:"url"`
		Args map[string][]string `json:"args"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("httpbin answer %q: %v", body, err)
	}
	if !strings.HasSuffix(got.URL, "/get?x=1") {
		t.Errorf("upstream saw URL %q, want the stripped path /get?x=1", got.URL)
	}
	if code, _ := httpDo(t, "GET", n.proxy+"/nowhere", ""); code != http.StatusNotFound {
		t.Errorf("GET /nowhere = %d, want 404", code)
	}

	out, _, code := n.cli(t, "get", "instances")
	if code != 0 || !strings.Contains(out, upstream.URL) {
		t.Errorf("gatehouse get instances = exit %d:\n%s\nwant a line with %s", code, out, upstream.URL)
	}
	out, _, code = n.cli(t, "get", "routes")
	if code != 0 || !strings.Contains(out, "client-service") {
		t.Errorf("gatehouse get routes = exit %d:\n%s", code, out)
	}
	if code := n.stop(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func TestConfigFileSurvivesRestartAndBadApplyChangesNothing(t *testing.T) {
	upstream := httptest.NewServer(httpbin.New())
	defer upstream.Close()
	dataDir := t.TempDir()
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`
services:
  - name: bin
    targets: [%q]
routes:
  - name: anything
    service: bin
    paths: ["/anything"]
    request_headers:
      set: {X-Via-Gatehouse: "yes"}
`, upstream.URL))
	n := startNode(t, dataDir, nil, "--config", cfg)
	code, body := httpDo(t, "GET", n.proxy+"/anything/1", "")
	if code != 200 || !strings.Contains(body, `"X-Via-Gatehouse"`) {
		t.Fatalf("GET /anything/1 = %d %s, want 200 with the added header echoed", code, body)
	}

	bad := writeFile(t, "bad.yaml", `
services:
  - name: bin
    targets: ["ftp://nope"]
routes:
  - name: anything
    service: missing
    paths: ["no-slash"]
`)
	_, errOut, exit := n.cli(t, "apply", "-f", bad)
	if exit == 0 {
		t.Fatalf("apply of an invalid file exited 0")
	}
	for _, want := range []string{"services[0].targets[0]", "routes[0].service", "routes[0].paths[0]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("apply error does not name %s:\n%s", want, errOut)
		}
	}
	if code, _ := httpDo(t, "GET", n.proxy+"/anything/2", ""); code != 200 {
		t.Errorf("after a rejected apply, GET /anything/2 = %d, want 200 (old config kept)", code)
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("exit code = %d", code)
	}

	// Restart without --config: the stored configuration is still there.
	n2 := startNode(t, dataDir, nil)
	if code, body := httpDo(t, "GET", n2.proxy+"/anything/3", ""); code != 200 {
		t.Fatalf("after restart GET /anything/3 = %d %s, want 200", code, body)
	}
}

func TestStartupRefusals(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{
			name: "admin off loopback without token",
			args: []string{"--admin-listen", "0.0.0.0:0"},
			want: []string{"GATEHOUSE_ADMIN_TOKEN", `"0.0.0.0:0"`},
		},
		{
			name: "synchronized mode variables",
			env:  []string{"SYNC_REDIS_URL=redis://127.0.0.1:6379/0"},
			want: []string{"SYNC_REDIS_URL", "single-instance"},
		},
		{
			name: "every problem at once",
			env:  []string{"GATEHOUSE_DRAIN_TIMEOUT=soon"},
			args: []string{"--trusted-proxies", "10.0.0.0/8,banana", "--tls-cert", "x.pem"},
			want: []string{`"banana"`, "GATEHOUSE_DRAIN_TIMEOUT", `"soon"`, "--tls-key"},
		},
		{
			name: "invalid config file",
			args: []string{"--config", "testdata/invalid.yaml"},
			want: []string{"routes[0].service", `"nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)...)
			// Later flags win, so tt.args can override the defaults above.
			cmd.Env = append(cleanEnv(), tt.env...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd.WaitDelay = time.Second
			var errb bytes.Buffer
			cmd.Stderr = &errb
			go func() { <-ctx.Done(); cmd.Process.Kill() }()
			err := cmd.Run()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve did not refuse to start (err %v):\n%s", err, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("refusal message lacks %s:\n%s", w, errb.String())
				}
			}
		})
	}
}

func TestDrainOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	defer close(release)
	cfg := writeFile(t, "g.yaml", fmt.Sprintf("services: [{name: slow, targets: [%q]}]\nroutes: [{name: slow, service: slow}]\n", slow.URL))
	n := startNode(t, t.TempDir(), nil, "--config", cfg, "--drain-timeout", "20s")

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(n.proxy + "/work")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	n.cmd.Process.Signal(syscall.SIGTERM)

	// While draining, readiness is false (poll: the signal is asynchronous).
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(n.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness did not turn false during drain (last err %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-n.exited:
		t.Fatalf("gatehouse exited with a request in flight")
	default:
	}
	release <- struct{}{}
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request = %d %q %v, want 200 finished", r.code, r.body, r.err)
	}
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("gatehouse did not exit after draining")
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func TestRegistrationLeaseExpires(t *testing.T) {
	upstream := httptest.NewServer(httpbin.New())
	defer upstream.Close()
	cfg := writeFile(t, "g.yaml", "services: [{name: svc}]\nroutes: [{name: r, service: svc}]\n")
	n := startNode(t, t.TempDir(), nil, "--config", cfg)
	code, body := httpDo(t, "POST", n.admin+"/register", `{"service":"svc","address":"`+upstream.URL+`","ttl":1}`)
	if code != http.StatusCreated {
		t.Fatalf("register = %d %s", code, body)
	}
	if code, _ := httpDo(t, "GET", n.proxy+"/get", ""); code != 200 {
		t.Fatalf("GET after register = %d, want 200", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := httpDo(t, "GET", n.proxy+"/get", "")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration with ttl 1s still routed after 15s (status %d)", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A bad address gets a 400 that says why.
	code, body = httpDo(t, "POST", n.admin+"/register", `{"service":"svc","address":"10.0.0.7:8080"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "10.0.0.7:8080") {
		t.Errorf("register with a bare host:port = %d %s, want 400 naming the address", code, body)
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"get without resource", []string{"get"}, 2, "get what?"},
		{"apply without file", []string{"apply"}, 2, "-f FILE"},
		{"unreachable admin", []string{"get", "routes", "--admin", "http://127.0.0.1:1"}, 1, "cannot reach the admin API"},
		{"version", []string{"version"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = cleanEnv()
			var errb bytes.Buffer
			cmd.Stderr = &errb
			cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %s)", got, tt.wantCode, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), tt.want)
			}
		})
	}
}
