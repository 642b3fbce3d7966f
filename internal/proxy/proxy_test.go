package proxy

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/config"
)

func TestRouting(t *testing.T) {
	a, b := echoUpstream(t, "a"), echoUpstream(t, "b")
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("a", a.URL), service("b", b.URL), service("empty")},
		Routes: []config.Route{
			route("a", "a", "/a"), route("b", "b", "/b"), route("empty", "empty", "/empty"),
		},
	})
	tests := []struct {
		name     string
		path     string
		wantName string // upstream that should answer; "" when the proxy answers
		wantCode int
	}{
		{name: "first service", path: "/a/x", wantName: "a", wantCode: 200},
		{name: "second service", path: "/b", wantName: "b", wantCode: 200},
		{name: "unknown route", path: "/nope", wantCode: http.StatusNotFound},
		{name: "service without replicas", path: "/empty/x", wantCode: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := g.get(t, tt.path)
			if tt.wantName == "" {
				checkError(t, resp, tt.wantCode)
				return
			}
			if got := decodeSeen(t, resp).Name; got != tt.wantName {
				t.Errorf("GET %s answered by %q, want %q", tt.path, got, tt.wantName)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	ups := []string{echoUpstream(t, "r0").URL, echoUpstream(t, "r1").URL, echoUpstream(t, "r2").URL}
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", ups...)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	want := []string{"r0", "r1", "r2", "r0", "r1", "r2", "r0"}
	var got []string
	for range want {
		got = append(got, decodeSeen(t, g.get(t, "/")).Name)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("replicas = %v, want %v", got, want)
	}
	// Outcomes are recorded before the handler returns, which may be just
	// after the client has its response.
	eventually(t, "no request in flight", func() bool {
		for _, u := range ups {
			if st, _ := g.proxy.ReplicaStats("static:" + u); st.InFlight != 0 {
				return false
			}
		}
		return true
	})
	for i, u := range ups {
		st, ok := g.proxy.ReplicaStats("static:" + u)
		if !ok {
			t.Fatalf("ReplicaStats(replica %d) not found", i)
		}
		if wantN := uint64(2 + max(0, 1-i)); st.Successes != wantN || st.Failures != 0 || st.InFlight != 0 {
			t.Errorf("ReplicaStats(replica %d) = %+v, want %d successes, 0 failures, 0 in flight", i, st, wantN)
		}
	}
}

func TestUpstreamPath(t *testing.T) {
	up := echoUpstream(t, "up")
	strip := route("strip", "s", "/api")
	strip.StripPrefix = true
	rewrite := route("rewrite", "s", "/users/{id}/posts")
	rewrite.Rewrite = "/v2/posts/{id}"
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{strip, rewrite, route("plain", "s", "/plain")},
	})
	tests := []struct {
		name, path, want string
	}{
		{name: "plain path and query kept", path: "/plain/a?x=1&y=a%20b", want: "/plain/a?x=1&y=a%20b"},
		{name: "escaped path not re-encoded", path: "/plain/a%2Fb/c%20d?q=%2F", want: "/plain/a%2Fb/c%20d?q=%2F"},
		{name: "strip prefix", path: "/api/v1/items?page=2", want: "/v1/items?page=2"},
		{name: "strip prefix to root", path: "/api", want: "/"},
		{name: "strip prefix keeps escapes", path: "/api/a%2Fb", want: "/a%2Fb"},
		{name: "rewrite with parameter", path: "/users/42/posts?sort=new", want: "/v2/posts/42?sort=new"},
		{name: "empty query marker dropped", path: "/plain?", want: "/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeSeen(t, g.get(t, tt.path)).RequestURI; got != tt.want {
				t.Errorf("upstream request URI for %s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestHost(t *testing.T) {
	up := echoUpstream(t, "up")
	preserve := route("preserve", "s", "/preserve")
	preserve.PreserveHost = true
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("default", "s", "/default"), preserve},
	})
	upHost := strings.TrimPrefix(up.URL, "http://")
	tests := []struct {
		name, path, want string
	}{
		{name: "replica host by default", path: "/default", want: upHost},
		{name: "client host preserved", path: "/preserve", want: "api.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, g.url+tt.path, nil)
			req.Host = "api.example.com"
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeSeen(t, resp).Host; got != tt.want {
				t.Errorf("upstream Host = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHopByHopHeaders(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		echoResp := w.Header()
		echoResp.Set("Connection", "X-Resp-Private")
		echoResp.Set("X-Resp-Private", "secret")
		echoResp.Set("Keep-Alive", "timeout=5")
		echoResp.Set("Proxy-Authenticate", "Basic")
		echoResp.Set("Upgrade", "foo")
		echoResp.Set("X-Resp-Kept", "yes")
		echoHandler("up")(w, r)
	})
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	tests := []struct {
		name       string
		te         string
		wantAbsent []string
		wantTE     string
	}{
		{name: "te gzip removed", te: "gzip", wantTE: ""},
		{name: "te trailers kept for grpc", te: "trailers", wantTE: "trailers"},
		{name: "te trailers among others", te: "gzip, trailers", wantTE: "trailers"},
	}
	absent := []string{"Connection", "X-Private", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Trailer"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := g.get(t, "/",
				"Connection", "X-Private, keep-alive",
				"X-Private", "secret",
				"Keep-Alive", "timeout=5",
				"Proxy-Authorization", "Basic Zm9vOmJhcg==",
				"Proxy-Connection", "keep-alive",
				"Upgrade", "foo",
				"Trailer", "X-T",
				"Te", tt.te,
				"X-Kept", "yes",
			)
			for _, k := range []string{"Connection", "X-Resp-Private", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("response header %s = %q, want it removed", k, v)
				}
			}
			if got := resp.Header.Get("X-Resp-Kept"); got != "yes" {
				t.Errorf("response header X-Resp-Kept = %q, want yes", got)
			}
			s := decodeSeen(t, resp)
			for _, k := range absent {
				if v, ok := s.Header[k]; ok {
					t.Errorf("upstream got %s = %q, want it removed", k, v)
				}
			}
			if got := s.Header.Get("Te"); got != tt.wantTE {
				t.Errorf("upstream got Te = %q, want %q", got, tt.wantTE)
			}
			if got := s.Header.Get("X-Kept"); got != "yes" {
				t.Errorf("upstream got X-Kept = %q, want yes", got)
			}
		})
	}
}

func TestXForwarded(t *testing.T) {
	up := echoUpstream(t, "up")
	c := config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	}
	untrusted := startGateway(t, Config{}, c)
	trusted := startGateway(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, c)
	elsewhere := startGateway(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, c)
	spoof := []string{
		"X-Forwarded-For", "1.2.3.4",
		"X-Forwarded-For", "5.6.7.8",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "evil.example",
	}
	tests := []struct {
		name                    string
		g                       *gateway
		header                  []string
		wantFor, wantProto      string
		wantHostIsGatewayHeader bool
		wantHost                string
	}{
		{name: "untrusted peer replaced", g: untrusted, header: spoof, wantFor: "127.0.0.1", wantProto: "http"},
		{name: "peer outside trusted networks replaced", g: elsewhere, header: spoof, wantFor: "127.0.0.1", wantProto: "http"},
		{name: "trusted peer appended and kept", g: trusted, header: spoof, wantFor: "1.2.3.4, 5.6.7.8, 127.0.0.1", wantProto: "https", wantHost: "evil.example"},
		{name: "trusted peer without headers", g: trusted, wantFor: "127.0.0.1", wantProto: "http"},
		{name: "untrusted peer without headers", g: untrusted, wantFor: "127.0.0.1", wantProto: "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeSeen(t, tt.g.get(t, "/", tt.header...))
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = tt.g.addr
			}
			for _, c := range []struct{ k, want string }{
				{"X-Forwarded-For", tt.wantFor},
				{"X-Forwarded-Proto", tt.wantProto},
				{"X-Forwarded-Host", wantHost},
			} {
				if got := strings.Join(s.Header[c.k], " | "); got != c.want {
					t.Errorf("upstream %s = %q, want %q", c.k, got, c.want)
				}
			}
		})
	}
}

func TestHeaderOps(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("X-Cache", "miss")
		w.Header().Add("X-Tag", "from-upstream")
		echoHandler("up")(w, r)
	})
	rt := route("s", "s", "/")
	rt.RequestHeaders = config.HeaderOps{
		Remove: []string{"cookie"},
		Set:    map[string]string{"x-env": "prod"},
		Add:    map[string]string{"x-tag": "gw"},
	}
	rt.ResponseHeaders = config.HeaderOps{
		Remove: []string{"server"},
		Set:    map[string]string{"x-cache": "hit"},
		Add:    map[string]string{"x-tag": "gw"},
	}
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{rt},
	})
	resp := g.get(t, "/", "Cookie", "session=1", "X-Env", "dev", "X-Tag", "client")
	for _, c := range []struct{ k, want string }{
		{"Server", ""},
		{"X-Cache", "hit"},
		{"X-Tag", "from-upstream,gw"},
	} {
		if got := strings.Join(resp.Header[c.k], ","); got != c.want {
			t.Errorf("response %s = %q, want %q", c.k, got, c.want)
		}
	}
	s := decodeSeen(t, resp)
	for _, c := range []struct{ k, want string }{
		{"Cookie", ""},
		{"X-Env", "prod"},
		{"X-Tag", "client,gw"},
	} {
		if got := strings.Join(s.Header[c.k], ","); got != c.want {
			t.Errorf("upstream %s = %q, want %q", c.k, got, c.want)
		}
	}
}

func TestRequestBodyForwarded(t *testing.T) {
	up := echoUpstream(t, "up")
	g := startGateway(t, Config{}, config.Config{
		Services: []config.Service{service("s", up.URL)},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	tests := []struct {
		name string
		body io.Reader
	}{
		{name: "content length", body: strings.NewReader("hello upstream")},
		{name: "chunked", body: io.MultiReader(strings.NewReader("hello "), strings.NewReader("upstream"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := g.client.Post(g.url+"/", "text/plain", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			s := decodeSeen(t, resp)
			if s.Body != "hello upstream" || s.Method != http.MethodPost {
				t.Errorf("upstream got %s %q, want POST %q", s.Method, s.Body, "hello upstream")
			}
		})
	}
}
