package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/controller"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
)

// keyedConfig is one echo service behind routes that need a key (from
// Authorization, X-API-Key or ?api_key=), one that does not, and a
// rate-limited one.
func keyedConfig(upstream string) config.Config {
	keyed := route("keyed", "svc", "/keyed")
	keyed.Auth = &config.Auth{APIKey: true, Header: "X-API-Key", Query: "api_key"}
	bearerOnly := route("bearer-only", "svc", "/bearer-only")
	bearerOnly.Auth = &config.Auth{APIKey: true}
	limited := route("limited", "svc", "/limited")
	limited.RateLimit = &config.RateLimit{Requests: 3, Per: config.Duration(time.Minute)}
	return config.Config{
		Services: []config.Service{service("svc", upstream)},
		Routes:   []config.Route{keyed, bearerOnly, limited, route("open", "svc", "/open")},
	}
}

// realNowMinus returns a clock running behind the real one by d, for a
// Manager that must accept an expiry that has passed in real time.
func realNowMinus(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(-d) }
}

func TestAPIKeyEnforcement(t *testing.T) {
	f := newKeyFixture(t, realNowMinus(2*time.Hour))
	// The Tyk example: a key imported with a chosen value, sent as
	// "authorization: testkey".
	f.importKey(t, "testkey", apikey.Spec{Name: "tyk"})
	_, generated, err := f.mgr.Create(t.Context(), apikey.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	revoked := f.importKey(t, "revoked-key", apikey.Spec{})
	if _, err := f.mgr.Revoke(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	// Valid for the Manager's clock, two hours behind: expired an hour ago.
	f.importKey(t, "expired-key", apikey.Spec{ExpiresAt: time.Now().Add(-time.Hour)})
	f.importKey(t, "orders-only", apikey.Spec{AllowedRoutes: []string{"orders"}})
	f.importKey(t, "other-svc", apikey.Spec{AllowedServices: []string{"other"}})

	up := echoUpstream(t, "svc")
	g := startGatewayWith(t, Config{}, keyedConfig(up.URL), f.deps())

	type hdr = []string
	accepted := []struct {
		name       string
		path       string
		header     hdr
		wantHeader map[string]string // "" = must be absent upstream
		wantURI    string
	}{
		{"bearer", "/keyed/1", hdr{"Authorization", "Bearer " + generated}, map[string]string{"Authorization": ""}, "/keyed/1"},
		{"bare authorization", "/keyed/1", hdr{"authorization", "testkey"}, map[string]string{"Authorization": ""}, "/keyed/1"},
		{"bare authorization, no extra sources", "/bearer-only/1", hdr{"authorization", "testkey"}, map[string]string{"Authorization": ""}, "/bearer-only/1"},
		{"custom header", "/keyed/1", hdr{"X-API-Key", "testkey"}, map[string]string{"X-Api-Key": ""}, "/keyed/1"},
		{"custom header, upstream's own Authorization kept", "/keyed/1", hdr{"X-API-Key", "testkey", "Authorization", "Basic dXNlcjpwdw=="},
			map[string]string{"X-Api-Key": "", "Authorization": "Basic dXNlcjpwdw=="}, "/keyed/1"},
		{"query parameter", "/keyed/1?a=1&api_key=testkey&b=%20x", nil, nil, "/keyed/1?a=1&b=%20x"},
		{"query parameter alone", "/keyed/1?api_key=testkey", nil, nil, "/keyed/1"},
		{"key header stripped even when the key came from elsewhere", "/keyed/1", hdr{"Authorization", "Bearer testkey", "X-API-Key", ""},
			map[string]string{"Authorization": "", "X-Api-Key": ""}, "/keyed/1"},
		{"no key needed", "/open/1", hdr{"Authorization", "Bearer whatever"}, map[string]string{"Authorization": "Bearer whatever"}, "/open/1"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeSeen(t, g.get(t, tt.path, tt.header...))
			if s.RequestURI != tt.wantURI {
				t.Errorf("upstream request URI = %q, want %q", s.RequestURI, tt.wantURI)
			}
			for k, want := range tt.wantHeader {
				if got := s.Header.Get(k); got != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
			for k, vs := range s.Header {
				for _, v := range vs {
					if strings.Contains(v, "testkey") || strings.Contains(v, generated) {
						t.Errorf("upstream header %s carries the key", k)
					}
				}
			}
		})
	}

	refused := []struct {
		name          string
		path          string
		header        hdr
		status        int
		wantError     string
		wantChallenge bool
	}{
		{"missing", "/keyed/1", nil, 401, "missing API key", true},
		{"basic is not a key", "/bearer-only/1", hdr{"Authorization", "Basic dXNlcjpwdw=="}, 401, "missing API key", true},
		{"empty query value", "/keyed/1?api_key=", nil, 401, "missing API key", true},
		{"unknown", "/keyed/1", hdr{"Authorization", "Bearer not-a-key-at-all"}, 401, "unknown API key", true},
		{"revoked", "/keyed/1", hdr{"X-API-Key", "revoked-key"}, 401, "revoked API key", true},
		{"expired", "/keyed/1?api_key=expired-key", nil, 401, "expired API key", true},
		{"route not allowed", "/keyed/1", hdr{"Authorization", "orders-only"}, 403, "API key not allowed on route keyed", false},
		{"service not allowed", "/keyed/1", hdr{"Authorization", "other-svc"}, 403, "API key not allowed on service svc", false},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp := g.get(t, tt.path, tt.header...)
			challenge := resp.Header.Get("Www-Authenticate")
			e := checkError(t, resp, tt.status)
			if e.Error != tt.wantError {
				t.Errorf("error = %q, want %q", e.Error, tt.wantError)
			}
			if tt.wantChallenge != (challenge != "") {
				t.Errorf("WWW-Authenticate = %q, want one: %v", challenge, tt.wantChallenge)
			}
			for _, key := range []string{"not-a-key-at-all", "revoked-key", "expired-key", "orders-only", "other-svc"} {
				if strings.Contains(e.Error, key) {
					t.Errorf("error %q names the key", e.Error)
				}
			}
		})
	}
	for _, key := range []string{"testkey", generated, "not-a-key-at-all", "revoked-key", "expired-key"} {
		if strings.Contains(g.logs.String(), key) {
			t.Errorf("the proxy's log holds a key:\n%s", g.logs)
		}
	}
}

func TestAPIKeysUnavailable(t *testing.T) {
	up := echoUpstream(t, "svc")
	t.Run("index not loaded yet", func(t *testing.T) {
		// An Index whose Run has not loaded the store: the keys are not
		// known yet, which must not read as "unknown key".
		idx, err := apikey.NewIndex(nil, apikey.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := startGatewayWith(t, Config{}, keyedConfig(up.URL), Deps{Keys: idx})
		resp := g.get(t, "/keyed/1", "Authorization", "Bearer some-key")
		retryAfter := resp.Header.Get("Retry-After")
		if e := checkError(t, resp, http.StatusServiceUnavailable); e.Error != "API keys not loaded yet" || retryAfter == "" {
			t.Errorf("error = %q with Retry-After %q, want API keys not loaded yet and a Retry-After", e.Error, retryAfter)
		}
		decodeSeen(t, g.get(t, "/open/1"))
	})
	t.Run("no key checker", func(t *testing.T) {
		g := startGatewayWith(t, Config{}, keyedConfig(up.URL), Deps{})
		if e := checkError(t, g.get(t, "/keyed/1", "Authorization", "Bearer some-key"), http.StatusServiceUnavailable); e.Error != "API keys are not enabled on this gateway" {
			t.Errorf("error = %q, want API keys are not enabled on this gateway", e.Error)
		}
		decodeSeen(t, g.get(t, "/open/1"))
	})
}

// TestRevokeIsImmediate revokes a key through the admin API and sends the
// next request through the proxy at once: it must be refused, with no
// request in between and no wait for the store watch.
func TestRevokeIsImmediate(t *testing.T) {
	f := newKeyFixture(t, time.Now)
	ctrl, err := controller.New(f.st, controller.Config{}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	up := echoUpstream(t, "svc")
	if _, err := ctrl.Update(t.Context(), func(c *config.Config) error { *c = keyedConfig(up.URL); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(admin.Deps{Config: ctrl, Registry: registry.New(f.st, registry.Config{}), Status: ctrl, Keys: f.mgr}, admin.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := httptest.NewServer(adm)
	t.Cleanup(adminSrv.Close)
	p, err := New(ctrl, f.deps(), Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(p)
	t.Cleanup(gw.Close)
	t.Cleanup(p.Close)
	key := f.importKey(t, "testkey", apikey.Spec{})

	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/keyed/1", nil)
		req.Header.Set("Authorization", "testkey")
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("before revoke: status %d, want 200", got)
	}
	start := time.Now()
	resp, err := adminSrv.Client().Post(adminSrv.URL+"/keys/"+key.ID+"/revoke", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /keys/%s/revoke = %d, want 200", key.ID, resp.StatusCode)
	}
	revoked := time.Now()
	if got := get(); got != http.StatusUnauthorized {
		t.Fatalf("first request after the revoke answered: status %d, want 401", got)
	}
	t.Logf("revoke: admin call %v, then the very next proxied request was refused after %v (0 requests let through)",
		revoked.Sub(start).Round(time.Microsecond), time.Since(revoked).Round(time.Microsecond))
}

func TestRateLimits(t *testing.T) {
	f := newKeyFixture(t, time.Now)
	per := config.Duration(time.Minute)
	f.importKey(t, "limited-a", apikey.Spec{RateLimit: &apikey.Limit{Requests: 2, Per: per}})
	f.importKey(t, "limited-b", apikey.Spec{RateLimit: &apikey.Limit{Requests: 2, Per: per}})
	// The upstream sends RateLimit fields of its own; the gateway's win.
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "999")
		w.Header().Set("RateLimit-Policy", "999;w=1")
		io.WriteString(w, "ok")
	})
	g := startGatewayWith(t, Config{}, keyedConfig(up.URL), f.deps())

	t.Run("route: burst then 429", func(t *testing.T) {
		for i := range 3 {
			resp := g.get(t, "/limited/1")
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d = %d, want 200", i+1, resp.StatusCode)
			}
			h := resp.Header
			if h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != strconv.Itoa(2-i) || h.Get("RateLimit-Policy") != "3;w=60" {
				t.Errorf("request %d headers = %v, want the route's RateLimit-Limit 3, -Remaining %d, -Policy 3;w=60", i+1, h, 2-i)
			}
		}
		resp := g.get(t, "/limited/1")
		h := resp.Header
		if e := checkError(t, resp, http.StatusTooManyRequests); e.Error != "route rate limit exceeded" {
			t.Errorf("error = %q, want route rate limit exceeded", e.Error)
		}
		if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
			t.Errorf("Retry-After = %q, want 1 to 20 seconds (one request per 20 s)", h.Get("Retry-After"))
		}
		for _, k := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"} {
			if h.Get(k) == "" {
				t.Errorf("429 lacks %s: %v", k, h)
			}
		}
		if h.Get("RateLimit-Remaining") != "0" {
			t.Errorf("RateLimit-Remaining = %q, want 0", h.Get("RateLimit-Remaining"))
		}
	})

	t.Run("key: independent per key", func(t *testing.T) {
		for i := range 2 {
			resp := g.get(t, "/keyed/1", "Authorization", "limited-a")
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Remaining") != strconv.Itoa(1-i) {
				t.Fatalf("request %d with limited-a = %d (remaining %q), want 200 with %d remaining", i+1, resp.StatusCode, resp.Header.Get("RateLimit-Remaining"), 1-i)
			}
		}
		resp := g.get(t, "/keyed/1", "Authorization", "limited-a")
		if e := checkError(t, resp, http.StatusTooManyRequests); e.Error != "API key rate limit exceeded" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("3rd request with limited-a: error %q, Retry-After %q; want API key rate limit exceeded with a Retry-After", e.Error, resp.Header.Get("Retry-After"))
		}
		resp = g.get(t, "/keyed/1", "Authorization", "limited-b")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("first request with limited-b = %d, want 200: limits are per key", resp.StatusCode)
		}
	})
}

// TestQuotaSurvivesRestart counts a key's daily quota through the proxy,
// restarts everything over the same store file, and finds the count there.
func TestQuotaSurvivesRestart(t *testing.T) {
	path := t.TempDir() + "/gatehouse.db"
	up := echoUpstream(t, "svc")
	var keyID string

	// run starts a gateway over the store file, sends requests with the
	// key until want statuses were seen in order, then stops the quota
	// flusher (the final flush) and closes the store.
	run := func(t *testing.T, want ...int) {
		f := openKeyFixture(t, path, time.Now)
		if keyID == "" {
			keyID = f.importKey(t, "quota-key", apikey.Spec{Quota: &apikey.Quota{Requests: 3, Period: apikey.PeriodDay}}).ID
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.quotas.Run(ctx) }()
		g := startGatewayWith(t, Config{}, keyedConfig(up.URL), f.deps())
		for i, status := range want {
			resp := g.get(t, "/keyed/1", "Authorization", "quota-key")
			resp.Body.Close()
			if resp.StatusCode != status {
				t.Fatalf("request %d = %d, want %d", i+1, resp.StatusCode, status)
			}
			if status == http.StatusTooManyRequests {
				reset, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				if reset < 1 || reset > 24*60*60 {
					t.Errorf("Retry-After = %q, want the seconds until the end of the UTC day", resp.Header.Get("Retry-After"))
				}
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("quotas.Run() = %v", err)
		}
		f.st.Close()
	}
	t.Run("first run uses 2 of 3", func(t *testing.T) { run(t, 200, 200) })
	t.Run("second run has 1 left", func(t *testing.T) { run(t, 200, 429) })
	t.Run("third run has none", func(t *testing.T) { run(t, 429) })
}
