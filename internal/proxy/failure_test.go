package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

// deadAddress returns the URL of a loopback port nobody listens on any more.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestUpstreamUnreachable(t *testing.T) {
	dead := deadAddress(t)
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", dead)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	checkError(t, g.get(t, "/"), http.StatusBadGateway)
	st, ok := g.proxy.ReplicaStats("static:" + dead)
	if !ok || st.Failures != 1 || st.Successes != 0 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Errorf("ReplicaStats() = %+v, %v; want 1 failure with a last error", st, ok)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	slow := newGate(t)
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		slow.wait(r.Context())
	})
	fast := echoUpstream(t, "fast")
	rt := route("slow", "slow", "/slow")
	rt.Timeout = config.Duration(100 * time.Millisecond)
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("slow", up.URL), service("fast", fast.URL)},
		Routes:   []config.Route{rt, route("fast", "fast", "/fast")},
	})
	start := time.Now()
	e := checkError(t, g.get(t, "/slow"), http.StatusGatewayTimeout)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("504 after %v, want about the 100ms route timeout", elapsed)
	}
	if e.Error != "upstream timeout" {
		t.Errorf("error = %q, want %q", e.Error, "upstream timeout")
	}
	st, _ := g.proxy.ReplicaStats("static:" + up.URL)
	if st.Failures != 1 || st.LastError != errUpstreamTimeout.Error() {
		t.Errorf("ReplicaStats() = %+v, want 1 timeout failure", st)
	}
	// The timeout bounds the wait for headers only; a normal route is not
	// affected by an earlier timer.
	if got := decodeSeen(t, g.get(t, "/fast")).Name; got != "fast" {
		t.Errorf("after a timeout, /fast answered by %q", got)
	}
}

func TestTruncatedRequestBody(t *testing.T) {
	var started, complete atomic.Int32
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		b, err := io.ReadAll(r.Body)
		if err == nil && len(b) == 100 {
			complete.Add(1)
		}
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	checkError(t, resp, http.StatusBadRequest)
	if n := complete.Load(); n != 0 {
		t.Errorf("upstream received %d complete bodies, want 0", n)
	}
	st, _ := g.proxy.ReplicaStats("static:" + up.URL)
	if st.Failures != 0 {
		t.Errorf("ReplicaStats().Failures = %d, want 0: the client's broken body is not the replica's fault", st.Failures)
	}
	if logs := g.logs.String(); strings.Contains(logs, "upstream request failed") {
		t.Errorf("logs blame the upstream for the client's body:\n%s", logs)
	}
}

func TestClientGoneIsNotAnUpstreamError(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hold := newGate(t)
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hold.wait(r.Context())
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := g.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Fatalf("request cancelled by the client: err = nil")
	}
	eventually(t, "the proxy to note the client leaving and finish", func() bool {
		st, _ := g.proxy.ReplicaStats("static:" + up.URL)
		return strings.Contains(g.logs.String(), "status=499") && st.InFlight == 0
	})
	if logs := g.logs.String(); strings.Contains(logs, "upstream request failed") {
		t.Errorf("client leaving logged as an upstream error:\n%s", logs)
	}
	st, _ := g.proxy.ReplicaStats("static:" + up.URL)
	if st.Failures != 0 {
		t.Errorf("ReplicaStats() = %+v, want no failure", st)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	up := echoUpstream(t, "up")
	g := startGateway(t, Config{MaxBodyBytes: 10}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	tests := []struct {
		name     string
		body     io.Reader
		wantCode int
	}{
		{name: "declared length over limit", body: strings.NewReader(strings.Repeat("x", 11)), wantCode: http.StatusRequestEntityTooLarge},
		{name: "chunked body over limit", body: io.MultiReader(strings.NewReader("xxxxxx"), strings.NewReader("xxxxxx")), wantCode: http.StatusRequestEntityTooLarge},
		{name: "within limit", body: strings.NewReader("0123456789"), wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := g.client.Post(g.url+"/", "text/plain", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCode == http.StatusOK {
				if s := decodeSeen(t, resp); s.Body != "0123456789" {
					t.Errorf("upstream body = %q, want 0123456789", s.Body)
				}
				return
			}
			checkError(t, resp, tt.wantCode)
		})
	}
}

func TestNoSnapshot(t *testing.T) {
	g := startGateway(t, Config{}, config.Config{})
	g.snap.Store(nil)
	checkError(t, g.get(t, "/"), http.StatusServiceUnavailable)
}

func TestReplicaStatsOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		wantSuccesses uint64
		wantFailures  uint64
	}{
		{name: "ok", status: http.StatusOK, wantSuccesses: 1},
		{name: "client error is a success for the replica", status: http.StatusNotFound, wantSuccesses: 1},
		{name: "server error is a failure", status: http.StatusServiceUnavailable, wantFailures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			g := startGateway(t, Config{}, config.Config{
				Services: []config.Service{service("s", up.URL)},
				Routes:   []config.Route{route("s", "s", "/")},
			})
			resp := g.get(t, "/")
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want the upstream's %d", resp.StatusCode, tt.status)
			}
			st, _ := g.proxy.ReplicaStats("static:" + up.URL)
			if st.Successes != tt.wantSuccesses || st.Failures != tt.wantFailures {
				t.Errorf("ReplicaStats() = %+v, want %d successes and %d failures", st, tt.wantSuccesses, tt.wantFailures)
			}
		})
	}
}

// TestSlowRequestBody has a client send part of a small body and stall: the
// read-ahead for retries is bounded by the route timeout, answered 408, and
// no replica is blamed or even asked.
func TestSlowRequestBody(t *testing.T) {
	up := startUpstream(t, "up", nil)
	rt := route("s", "s", "/")
	rt.Timeout = config.Duration(200 * time.Millisecond)
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{rt},
	})
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(conn, "PUT /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	checkError(t, resp, http.StatusRequestTimeout)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("answered after %v, want about the 200ms route timeout", elapsed)
	}
	if n := up.hits.Load(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
	if st := g.status(t, "s", up.id()); st.ConsecutiveFailures != 0 || st.WindowRequests != 0 {
		t.Errorf("breaker = %+v, want nothing recorded", st)
	}
}
