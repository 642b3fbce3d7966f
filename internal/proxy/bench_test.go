package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/balance"
	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// benchConfig has a handful of routes so that matching is not trivial.
func benchConfig(upstream string) config.Config {
	strip := route("api", "api", "/api/v1")
	strip.StripPrefix = true
	return config.Config{
		Services: []config.Service{
			service("api", upstream, upstream+"/"),
			service("users", upstream),
			service("static", upstream),
		},
		Routes: []config.Route{
			strip,
			route("users", "users", "/users/{id}"),
			route("static", "static", "/static"),
			route("root", "static", "/"),
		},
	}
}

// BenchmarkDecide measures the engine-free part of a request: route match
// and replica pick through the breakers, for every balancing policy.
// Budget: 0 allocations.
func BenchmarkDecide(b *testing.B) {
	for _, policy := range balance.PolicyNames() {
		b.Run(policy, func(b *testing.B) {
			c := benchConfig("http://127.0.0.1:1")
			c.Services[0].Targets = append(c.Services[0].Targets, config.Target{URL: "http://127.0.0.2:1"})
			c.Services[0].LoadBalancer.Policy = policy
			if policy == balance.PolicyConsistentHash {
				c.Services[0].LoadBalancer.HashOn = "header:X-User"
			}
			snap := compile(b, c, 1)
			var src atomic.Pointer[snapshot.Snapshot]
			src.Store(snap)
			breakers := breaker.New(BreakerConfig, nil)
			breakers.Sync(snap, time.Now())
			p, err := New(&src, Deps{Breakers: breakers}, Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "http://api.example.com/api/v1/items/42", nil)
			r.Header.Set("X-User", "alice")
			req := snapshot.Request{Host: r.Host, Method: r.Method, Path: r.URL.Path, Header: r.Header}
			b.ReportAllocs()
			for b.Loop() {
				d := decide(snap, req)
				x := p.getExchange(nil, r, d.match, req.Path)
				if x.svc.Balancer.Policy == balance.PolicyConsistentHash {
					x.key = p.hashKey(r, &x.svc.Balancer)
				}
				if p.pick(x, time.Now()) == nil {
					b.Fatal("no replica")
				}
				p.putExchange(x)
			}
		})
	}
}

// discardWriter is the cheapest http.ResponseWriter (plus Flush), so that
// BenchmarkServeHTTP counts the proxy's work and the upstream round trip,
// not a recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) Flush()                      {}

// BenchmarkServeHTTP measures the whole per-request path through the
// handler against a keep-alive local upstream.
func BenchmarkServeHTTP(b *testing.B) {
	payload := []byte(`{"ok":true,"items":[1,2,3]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	var src atomic.Pointer[snapshot.Snapshot]
	src.Store(compile(b, benchConfig(up.URL), 1))
	breakers := breaker.New(BreakerConfig, nil)
	breakers.Sync(src.Load(), time.Now())
	p, err := New(&src, Deps{Breakers: breakers}, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/api/v1/items/42?x=1", nil)
	req.RemoteAddr = "192.0.2.1:50000"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "application/json")
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status = %d", w.code)
		}
	}
}

// BenchmarkEndToEnd adds a real client and the gateway's server: client →
// NewServer → Proxy → upstream, all keep-alive on loopback.
func BenchmarkEndToEnd(b *testing.B) {
	payload := []byte(`{"ok":true,"items":[1,2,3]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	var src atomic.Pointer[snapshot.Snapshot]
	src.Store(compile(b, benchConfig(up.URL), 1))
	breakers := breaker.New(BreakerConfig, nil)
	breakers.Sync(src.Load(), time.Now())
	p, err := New(&src, Deps{Breakers: breakers}, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	gw := httptest.NewUnstartedServer(p)
	gw.Config = NewServer(p, ServerConfig{})
	gw.Start()
	defer gw.Close()
	client := gw.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(gw.URL + "/api/v1/items/42")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status = %d", resp.StatusCode)
		}
	}
}

// BenchmarkServeHTTPKeyed is BenchmarkServeHTTP on a route that requires an
// API key (sent as a bearer token) and has a rate limit, with a key that
// has its own rate limit and quota, metrics and the access log on (to
// io.Discard): the cost of the admission step and of the telemetry.
func BenchmarkServeHTTPKeyed(b *testing.B) {
	payload := []byte(`{"ok":true,"items":[1,2,3]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	defer up.Close()
	c := benchConfig(up.URL)
	c.Routes[0].Auth = &config.Auth{APIKey: true}
	c.Routes[0].RateLimit = &config.RateLimit{Requests: 1 << 30, Per: config.Duration(time.Hour)}
	var src atomic.Pointer[snapshot.Snapshot]
	src.Store(compile(b, c, 1))
	f := newKeyFixture(b, nil)
	_, key, err := f.mgr.Create(b.Context(), apikey.Spec{
		RateLimit: &apikey.Limit{Requests: 1 << 30, Per: config.Duration(time.Hour)},
		Quota:     &apikey.Quota{Requests: 1 << 40, Period: apikey.PeriodMonth},
	})
	if err != nil {
		b.Fatal(err)
	}
	breakers := breaker.New(BreakerConfig, nil)
	breakers.Sync(src.Load(), time.Now())
	deps := f.deps()
	deps.Breakers, deps.Metrics, deps.AccessLog = breakers, telemetry.NewMetrics(), telemetry.NewAccessLog(io.Discard, true)
	p, err := New(&src, deps, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/api/v1/items/42?x=1", nil)
	req.RemoteAddr = "192.0.2.1:50000"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status = %d", w.code)
		}
	}
}
