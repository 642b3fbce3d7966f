package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// logBuffer collects log output; it stays safe to write after the test ends,
// as hijacked connections may log late.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// gateway is a Proxy under test, served by NewServer on a real loopback
// listener (HTTP/1.1 and h2c), with real breakers that follow its
// snapshots as cmd/gatehouse wires them.
type gateway struct {
	proxy    *Proxy
	snap     atomic.Pointer[snapshot.Snapshot]
	breakers *breaker.Breakers
	now      func() time.Time
	addr     string
	url      string
	logs     *logBuffer
	client   *http.Client

	mu       sync.Mutex
	outcomes []Outcome
}

func startGateway(t *testing.T, cfg Config, c config.Config) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, c, Deps{})
}

// startGatewayWith is startGateway with more collaborators: deps' Breakers
// and Observe are the gateway's own.
func startGatewayWith(t *testing.T, cfg Config, c config.Config, deps Deps) *gateway {
	t.Helper()
	g := &gateway{logs: &logBuffer{}, now: cfg.Now}
	if g.now == nil {
		g.now = time.Now
	}
	log := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g.breakers = breaker.New(BreakerConfig, log)
	g.swap(t, c, 1)
	observe := func(_ *http.Request, o Outcome) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.outcomes = append(g.outcomes, o)
	}
	deps.Breakers, deps.Observe = g.breakers, observe
	p, err := New(&g.snap, deps, cfg, log)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	g.proxy = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(p, ServerConfig{})
	go func() { _ = srv.Serve(ln) }()
	g.addr = ln.Addr().String()
	g.url = "http://" + g.addr
	tr := &http.Transport{}
	g.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
		p.Close()
	})
	return g
}

// swap publishes the snapshot compiled from c at rev, and has the breakers
// follow it.
func (g *gateway) swap(t *testing.T, c config.Config, rev int64) {
	t.Helper()
	s := compile(t, c, rev)
	g.snap.Store(s)
	g.breakers.Sync(s, g.now())
}

// lastOutcome returns the outcome of the last request the proxy finished.
// The proxy reports it as its handler returns, which may be just after the
// client has read the response.
func (g *gateway) outcome(t *testing.T, n int) Outcome {
	t.Helper()
	var o Outcome
	eventually(t, fmt.Sprintf("%d outcomes", n), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.outcomes) < n {
			return false
		}
		o = g.outcomes[n-1]
		return true
	})
	return o
}

// status returns the breaker status of replica id of service.
func (g *gateway) status(t *testing.T, service, id string) breaker.Status {
	t.Helper()
	st, ok := g.breakers.For(service).Statuses(g.now())[id]
	if !ok {
		t.Fatalf("no breaker for replica %s of service %s", id, service)
	}
	return st
}

func (g *gateway) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func compile(t testing.TB, c config.Config, rev int64) *snapshot.Snapshot {
	t.Helper()
	s, err := snapshot.Compile(c, nil, rev)
	if err != nil {
		t.Fatalf("snapshot.Compile() error = %v", err)
	}
	return s
}

func service(name string, urls ...string) config.Service {
	s := config.Service{Name: name}
	for _, u := range urls {
		s.Targets = append(s.Targets, config.Target{URL: u})
	}
	return s
}

func route(name, svc string, paths ...string) config.Route {
	return config.Route{Name: name, Service: svc, Paths: paths}
}

// seen is what echoUpstream reports about the request it received.
type seen struct {
	Name       string
	Method     string
	RequestURI string
	Host       string
	Proto      string
	Header     http.Header
	Body       string
}

// echoUpstream is an upstream that answers with a JSON description of the
// request it received.
func echoUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(echoHandler(name))
	t.Cleanup(ts.Close)
	return ts
}

func echoHandler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{
			Name: name, Method: r.Method, RequestURI: r.RequestURI, Host: r.Host,
			Proto: r.Proto, Header: r.Header, Body: string(body),
		})
	}
}

// decodeSeen reads an echoUpstream answer, failing on any other.
func decodeSeen(t *testing.T, resp *http.Response) seen {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, body)
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("decode upstream echo %q: %v", body, err)
	}
	return s
}

// errorBody is the JSON the proxy answers errors with.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// checkError asserts resp is a JSON error with the given status.
func checkError(t *testing.T, resp *http.Response, status int) errorBody {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decode error body %q: %v", body, err)
	}
	if e.Status != status || e.Error == "" {
		t.Errorf("error body = %+v, want status %d and a message", e, status)
	}
	return e
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// gate blocks upstream handlers until opened. It opens at the latest when
// the test ends, before the upstream servers created earlier are closed
// (cleanups run last-in first-out), so that no handler outlives its test.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until g opens or ctx ends.
func (g *gate) wait(ctx context.Context) {
	select {
	case <-g.ch:
	case <-ctx.Done():
	}
}

// httptestServer starts an upstream running h, closed when the test ends.
func httptestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// nilSource is a Source with no snapshot yet.
type nilSource struct{}

func (nilSource) Load() *snapshot.Snapshot { return nil }
