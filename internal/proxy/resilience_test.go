package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/health"
)

// upstream is a replica that counts the requests it receives, health
// checks aside.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

// startUpstream starts a counting replica answering with h, or with
// echoHandler(name) when h is nil.
func startUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(u.handler(h))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) handler(h http.HandlerFunc) http.Handler {
	if h == nil {
		h = echoHandler(u.name)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			u.hits.Add(1)
		}
		h(w, r)
	})
}

// restart serves h again on the address u had before it was closed, with
// its count back to 0.
func (u *upstream) restart(t *testing.T, h http.HandlerFunc) {
	t.Helper()
	u.hits.Store(0)
	ln, err := net.Listen("tcp", strings.TrimPrefix(u.URL, "http://"))
	if err != nil {
		t.Fatalf("listen again on %s: %v", u.URL, err)
	}
	u.Server = httptest.NewUnstartedServer(u.handler(h))
	u.Listener.Close()
	u.Listener = ln
	u.Start()
	t.Cleanup(u.Close)
}

func (u *upstream) id() string { return "static:" + u.URL }

// answering answers every request with code and a body of its own.
func answering(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "upstream says "+http.StatusText(code))
	}
}

// testClock is the proxy's and breakers' clock: real time plus an offset
// the test advances, so that cool-downs pass without waiting.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func urls(ups ...*upstream) []string {
	var out []string
	for _, u := range ups {
		out = append(out, u.URL)
	}
	return out
}

// getN sends n sequential GETs to path and returns how many were not 200.
func (g *gateway) getN(t *testing.T, n int, path string, header ...string) (failed int) {
	t.Helper()
	for range n {
		resp := g.get(t, path, header...)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
		}
	}
	return failed
}

func TestKilledReplicaIsEjectedAndComesBack(t *testing.T) {
	a, b, c := startUpstream(t, "a", nil), startUpstream(t, "b", nil), startUpstream(t, "c", nil)
	svc := service("s", urls(a, b, c)...)
	svc.CircuitBreaker = config.CircuitBreaker{ConsecutiveFailures: 3, BaseEjection: config.Duration(30 * time.Second)}
	clock := &testClock{}
	g := startGateway(t, Config{Now: clock.Now}, config.Config{
		Services: []config.Service{svc},
		Routes:   []config.Route{route("s", "s", "/")},
	})
	if failed := g.getN(t, 30, "/"); failed != 0 {
		t.Fatalf("%d of 30 GETs failed with all replicas up", failed)
	}

	c.Close()
	if failed := g.getN(t, 100, "/"); failed != 0 {
		t.Errorf("%d of 100 GETs failed after replica c was killed, want 0 (retried on another replica)", failed)
	}
	st := g.status(t, "s", c.id())
	if st.State != breaker.StateEjected || st.LastError == "" || !st.EjectedUntil.After(clock.Now()) {
		t.Fatalf("breaker of the killed replica = %+v, want ejected into the future with a last error", st)
	}
	g.mu.Lock()
	retried := 0
	for _, o := range g.outcomes {
		if o.Attempts == 2 {
			retried++
		}
	}
	g.mu.Unlock()
	if retried == 0 || retried > 3 {
		t.Errorf("requests retried = %d, want 1 to 3 (until c was ejected after 3 failures)", retried)
	}

	// Back on the same address, it gets nothing until its cool-down ends,
	// then the half-open probe restores it.
	c.restart(t, nil)
	if failed := g.getN(t, 20, "/"); failed != 0 || c.hits.Load() != 0 {
		t.Errorf("during the cool-down: %d GETs failed, c got %d requests; want 0 and 0", failed, c.hits.Load())
	}
	clock.Advance(31 * time.Second)
	if failed := g.getN(t, 30, "/"); failed != 0 {
		t.Errorf("%d of 30 GETs failed after the cool-down", failed)
	}
	if got := c.hits.Load(); got < 5 {
		t.Errorf("restored replica got %d of 30 requests, want its share (about 10)", got)
	}
	if st := g.status(t, "s", c.id()); st.State != breaker.StateHealthy || st.Ejections != 1 {
		t.Errorf("breaker after the probe = %+v, want healthy with 1 ejection remembered", st)
	}
}

func TestRetrySafety(t *testing.T) {
	const body = "the request body"
	tests := []struct {
		name   string
		method string
		first  http.HandlerFunc // replica tried first; nil: a closed port
		retry  config.Retry
		body   string
		// want: the status the client gets, the attempts, and whether the
		// second replica answered (with the body intact).
		wantStatus   int
		wantAttempts int
		wantSecond   bool
	}{
		{name: "GET 503 retried on another replica", method: "GET", first: answering(503), wantStatus: 200, wantAttempts: 2, wantSecond: true},
		{name: "GET 500 not a retryable status", method: "GET", first: answering(500), wantStatus: 500, wantAttempts: 1},
		{name: "POST 503 not retried once sent", method: "POST", first: answering(503), body: body, wantStatus: 503, wantAttempts: 1},
		{name: "POST without a body 503 not retried", method: "POST", first: answering(503), wantStatus: 503, wantAttempts: 1},
		{name: "POST to a closed port retried", method: "POST", body: body, wantStatus: 200, wantAttempts: 2, wantSecond: true},
		{name: "POST 503 retried when the route allows", method: "POST", first: answering(503), body: body,
			retry: config.Retry{RetryNonIdempotent: true}, wantStatus: 200, wantAttempts: 2, wantSecond: true},
		{name: "body above the replay limit not retried once sent", method: "POST", first: answering(503), body: body,
			retry: config.Retry{RetryNonIdempotent: true, MaxBodyBytes: 8}, wantStatus: 503, wantAttempts: 1},
		{name: "body above the replay limit retried when never sent", method: "PUT", body: body,
			retry: config.Retry{MaxBodyBytes: 8}, wantStatus: 200, wantAttempts: 2, wantSecond: true},
		{name: "attempts 1 disables retries", method: "GET", first: answering(503), retry: config.Retry{Attempts: 1}, wantStatus: 503, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := deadAddress(t)
			var firstUp *upstream
			if tt.first != nil {
				firstUp = startUpstream(t, "first", tt.first)
				first = firstUp.URL
			}
			second := startUpstream(t, "second", nil)
			rt := route("s", "s", "/")
			rt.Retry = tt.retry
			g := startGateway(t, Config{}, config.Config{
				Services: []config.Service{service("s", first, second.URL)},
				Routes:   []config.Route{rt},
			})
			req, _ := http.NewRequest(tt.method, g.url+"/x", strings.NewReader(tt.body))
			if tt.body == "" {
				req.Body = nil
			}
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("%s: status = %d %s, want %d", tt.method, resp.StatusCode, b, tt.wantStatus)
			}
			if tt.wantSecond {
				if s := decodeSeen(t, resp); s.Name != "second" || s.Body != tt.body || s.Method != tt.method {
					t.Errorf("answered by %q with %s %q, want second with %s %q", s.Name, s.Method, s.Body, tt.method, tt.body)
				}
			} else {
				resp.Body.Close()
			}
			if got := g.outcome(t, 1).Attempts; got != tt.wantAttempts {
				t.Errorf("Outcome.Attempts = %d, want %d", got, tt.wantAttempts)
			}
			if firstUp != nil && firstUp.hits.Load() != 1 {
				t.Errorf("first replica got %d requests, want 1", firstUp.hits.Load())
			}
			wantSecond := int64(0)
			if tt.wantSecond {
				wantSecond = 1
			}
			if got := second.hits.Load(); got != wantSecond {
				t.Errorf("second replica got %d requests, want %d", got, wantSecond)
			}
		})
	}
}

// TestRetryNeverRepeatsAReplica uses consistent hashing, which would pick
// the same replica for every attempt: each attempt must go to a replica the
// request has not tried.
func TestRetryNeverRepeatsAReplica(t *testing.T) {
	ups := []*upstream{startUpstream(t, "a", answering(503)), startUpstream(t, "b", answering(503))}
	svc := service("s", urls(ups...)...)
	svc.LoadBalancer = config.LoadBalancer{Policy: "consistent_hash", HashOn: "header:X-User"}
	svc.CircuitBreaker.Disabled = true
	g := startGateway(t, Config{}, config.Config{Services: []config.Service{svc}, Routes: []config.Route{route("s", "s", "/")}})
	resp := g.get(t, "/", "X-User", "alice")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("status = %d, want the last replica's 503", resp.StatusCode)
	}
	if a, b := ups[0].hits.Load(), ups[1].hits.Load(); a != 1 || b != 1 {
		t.Errorf("replica requests = %d and %d, want 1 each (3 attempts allowed, 2 replicas)", a, b)
	}
	if got := g.outcome(t, 1).Attempts; got != 2 {
		t.Errorf("Outcome.Attempts = %d, want 2", got)
	}
}

// TestRetryBudget has every replica answer 503 to GETs that may be tried 3
// times: the budget lets retries add only its ratio plus its floor.
func TestRetryBudget(t *testing.T) {
	const n = 50
	tests := []struct {
		name        string
		budget      config.RetryBudget
		wantAtMost  int64
		wantAtLeast int64
	}{
		// 20% of the requests in the window plus 0.1/s × 10s: 11 retries.
		{name: "budget caps retries", budget: config.RetryBudget{Ratio: 0.2, MinPerSecond: 0.1}, wantAtLeast: n + n/5 - 1, wantAtMost: n + n/5 + 1},
		// Without a binding budget every request is tried 3 times.
		{name: "generous budget", budget: config.RetryBudget{Ratio: 1, MinPerSecond: 1000}, wantAtLeast: 3 * n, wantAtMost: 3 * n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups := []*upstream{startUpstream(t, "a", answering(503)), startUpstream(t, "b", answering(503)), startUpstream(t, "c", answering(503))}
			svc := service("s", urls(ups...)...)
			svc.RetryBudget = tt.budget
			svc.CircuitBreaker.Disabled = true
			rt := route("s", "s", "/")
			rt.Retry = config.Retry{Attempts: 3, BackoffBase: config.Duration(time.Millisecond), BackoffMax: config.Duration(time.Millisecond)}
			g := startGateway(t, Config{}, config.Config{Services: []config.Service{svc}, Routes: []config.Route{rt}})
			for range n {
				resp := g.get(t, "/")
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 || string(b) != "upstream says Service Unavailable" {
					t.Fatalf("GET = %d %q, want the upstream's own 503", resp.StatusCode, b)
				}
			}
			var total int64
			for _, u := range ups {
				total += u.hits.Load()
			}
			if total < tt.wantAtLeast || total > tt.wantAtMost {
				t.Errorf("upstream attempts for %d requests = %d, want %d to %d", n, total, tt.wantAtLeast, tt.wantAtMost)
			}
		})
	}
}

func TestEjectionCap(t *testing.T) {
	a, b := startUpstream(t, "a", answering(500)), startUpstream(t, "b", answering(500))
	svc := service("s", a.URL, b.URL)
	svc.CircuitBreaker = config.CircuitBreaker{ConsecutiveFailures: 2}
	g := startGateway(t, Config{}, config.Config{Services: []config.Service{svc}, Routes: []config.Route{route("s", "s", "/")}})
	g.getN(t, 20, "/")
	states := map[string]int{}
	for _, u := range []*upstream{a, b} {
		states[g.status(t, "s", u.id()).State]++
	}
	if states[breaker.StateEjected] != 1 || states[breaker.StateHealthy] != 1 {
		t.Errorf("breaker states = %v, want 1 ejected and 1 healthy (max_ejected_percent 50 of 2)", states)
	}
	if g.breakers.For("s").Suppressed() == 0 {
		t.Errorf("Suppressed() = 0, want the second trip refused by the cap")
	}
}

// TestPanicMode marks two of three replicas unhealthy through real health
// checks: with one third available, below the 50% threshold, traffic goes
// to all of them; with panic mode off, only to the healthy one.
func TestPanicMode(t *testing.T) {
	tests := []struct {
		name      string
		threshold int
		wantAll   bool
	}{
		{name: "panic", threshold: 0, wantAll: true},
		{name: "panic mode off", threshold: -1, wantAll: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sick := func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/health" {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				echoHandler("sick")(w, r)
			}
			ok, sick1, sick2 := startUpstream(t, "ok", nil), startUpstream(t, "sick1", sick), startUpstream(t, "sick2", sick)
			svc := service("s", urls(ok, sick1, sick2)...)
			svc.CircuitBreaker = config.CircuitBreaker{PanicThresholdPercent: tt.threshold}
			svc.HealthCheck = &config.HealthCheck{Path: "/health", Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(20 * time.Millisecond), UnhealthyThreshold: 1}
			g := startGateway(t, Config{}, config.Config{Services: []config.Service{svc}, Routes: []config.Route{route("s", "s", "/")}})
			chk := health.New(nil, reporterFunc(func(service, id string, healthy bool) {
				_ = g.breakers.For(service).SetHealthy(id, healthy)
			}), nil)
			var targets []health.Target
			hc := g.snap.Load().Services["s"].HealthCheck
			for _, r := range g.snap.Load().Services["s"].Replicas {
				targets = append(targets, health.Target{Service: "s", Replica: r, Check: health.Check{
					Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout, UnhealthyThreshold: hc.UnhealthyThreshold,
				}})
			}
			chk.Sync(targets)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- chk.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			eventually(t, "two replicas unhealthy", func() bool {
				return g.status(t, "s", sick1.id()).State == breaker.StateUnhealthy &&
					g.status(t, "s", sick2.id()).State == breaker.StateUnhealthy
			})
			if failed := g.getN(t, 30, "/"); failed != 0 {
				t.Errorf("%d of 30 GETs failed", failed)
			}
			toSick := sick1.hits.Load() + sick2.hits.Load()
			if tt.wantAll && toSick < 10 {
				t.Errorf("unhealthy replicas got %d of 30 requests in panic mode, want about 20", toSick)
			}
			if !tt.wantAll && toSick != 0 {
				t.Errorf("unhealthy replicas got %d of 30 requests without panic mode, want 0", toSick)
			}
		})
	}
}

// reporterFunc adapts a function to health.Reporter.
type reporterFunc func(service, id string, healthy bool)

func (f reporterFunc) SetHealthy(service, id string, healthy bool) { f(service, id, healthy) }

func TestPerTryTimeout(t *testing.T) {
	hold := newGate(t)
	blocking := func(w http.ResponseWriter, r *http.Request) { hold.wait(r.Context()) }
	tests := []struct {
		name         string
		ups          []http.HandlerFunc // tried in this order; nil: echo
		perTry       time.Duration
		timeout      time.Duration
		wantStatus   int
		wantAttempts int
	}{
		{name: "blocked attempt cut, next replica answers", ups: []http.HandlerFunc{blocking, nil},
			perTry: 100 * time.Millisecond, timeout: 5 * time.Second, wantStatus: 200, wantAttempts: 2},
		{name: "route timeout bounds all attempts", ups: []http.HandlerFunc{blocking, blocking, blocking},
			perTry: 100 * time.Millisecond, timeout: 250 * time.Millisecond, wantStatus: 504, wantAttempts: 3},
		{name: "route timeout without per-try timeout", ups: []http.HandlerFunc{blocking, blocking, blocking},
			timeout: 150 * time.Millisecond, wantStatus: 504, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ups []*upstream
			for i, h := range tt.ups {
				ups = append(ups, startUpstream(t, string(rune('a'+i)), h))
			}
			rt := route("s", "s", "/")
			rt.Timeout = config.Duration(tt.timeout)
			rt.Retry = config.Retry{PerTryTimeout: config.Duration(tt.perTry), BackoffBase: config.Duration(time.Millisecond), BackoffMax: config.Duration(time.Millisecond)}
			g := startGateway(t, Config{}, config.Config{Services: []config.Service{service("s", urls(ups...)...)}, Routes: []config.Route{rt}})
			start := time.Now()
			resp := g.get(t, "/")
			resp.Body.Close()
			elapsed := time.Since(start)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if elapsed > tt.timeout+time.Second {
				t.Errorf("answered after %v, want within the route timeout %v", elapsed, tt.timeout)
			}
			if got := g.outcome(t, 1).Attempts; got != tt.wantAttempts {
				t.Errorf("Outcome.Attempts = %d, want %d", got, tt.wantAttempts)
			}
			if st := g.status(t, "s", ups[0].id()); st.ConsecutiveFailures != 1 || !strings.Contains(st.LastError, "timeout") {
				t.Errorf("breaker of the blocked replica = %+v, want 1 timeout failure", st)
			}
		})
	}
}

func TestClientCancelIsNotABreakerFailure(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hold := newGate(t)
	up := startUpstream(t, "up", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hold.wait(r.Context())
	})
	svc := service("s", up.URL)
	svc.CircuitBreaker = config.CircuitBreaker{ConsecutiveFailures: 1}
	g := startGateway(t, Config{}, config.Config{Services: []config.Service{svc}, Routes: []config.Route{route("s", "s", "/")}})
	for i := range 3 {
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
		<-errc
		if o := g.outcome(t, i+1); o.Status != statusClientClosed || o.Attempts != 1 {
			t.Errorf("Outcome = %+v, want status 499 after 1 attempt", o)
		}
	}
	if st := g.status(t, "s", up.id()); st.State != breaker.StateHealthy || st.ConsecutiveFailures != 0 || st.WindowFailures != 0 {
		t.Errorf("breaker after 3 client cancellations = %+v, want healthy without failures", st)
	}
}

func TestConsistentHash(t *testing.T) {
	tests := []struct {
		name    string
		hashOn  string
		trusted bool
		header  func(user string) []string
	}{
		{name: "header", hashOn: "header:x-user", header: func(u string) []string { return []string{"X-User", u} }},
		{name: "cookie", hashOn: "cookie:session", header: func(u string) []string { return []string{"Cookie", "theme=dark; session=" + u} }},
		{name: "client ip from a trusted proxy", hashOn: "client_ip", trusted: true,
			header: func(u string) []string {
				return []string{"X-Forwarded-For", "10.1.0." + u[len("user"):] + ", 10.9.9.9"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups := []*upstream{startUpstream(t, "a", nil), startUpstream(t, "b", nil), startUpstream(t, "c", nil)}
			svc := service("s", urls(ups...)...)
			svc.LoadBalancer = config.LoadBalancer{Policy: "consistent_hash", HashOn: tt.hashOn}
			var cfg Config
			if tt.trusted {
				cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			g := startGateway(t, cfg, config.Config{Services: []config.Service{svc}, Routes: []config.Route{route("s", "s", "/")}})
			owners := map[string]bool{}
			for u := range 20 {
				user := "user" + string(rune('0'+u/10)) + string(rune('0'+u%10))
				var first string
				for range 5 {
					got := decodeSeen(t, g.get(t, "/", tt.header(user)...)).Name
					if first == "" {
						first = got
					}
					if got != first {
						t.Fatalf("%s answered by %s and %s, want the same replica every time", user, first, got)
					}
				}
				owners[first] = true
			}
			if len(owners) < 2 {
				t.Errorf("20 keys all went to %v, want them spread", owners)
			}
		})
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		lines []string
		name  string
		want  string
	}{
		{[]string{"a=1; session=abc; b=2"}, "session", "abc"},
		{[]string{"a=1", "session=\"quoted\""}, "session", "quoted"},
		{[]string{"sessionx=1; xsession=2"}, "session", ""},
		{nil, "session", ""},
		{[]string{"session="}, "session", ""},
	}
	for _, tt := range tests {
		if got := cookieValue(tt.lines, tt.name); got != tt.want {
			t.Errorf("cookieValue(%q, %q) = %q, want %q", tt.lines, tt.name, got, tt.want)
		}
	}
}
