package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

func TestExtractKey(t *testing.T) {
	both := &snapshot.Auth{Header: "X-Api-Key", Query: "api_key"}
	plain := &snapshot.Auth{}
	tests := []struct {
		name     string
		auth     *snapshot.Auth
		header   http.Header
		query    string
		wantKey  string
		wantFrom keySource
	}{
		{"nothing", both, http.Header{}, "", "", keyNone},
		{"bearer", plain, http.Header{"Authorization": {"Bearer k1"}}, "", "k1", keyAuthorization},
		{"bearer any case", plain, http.Header{"Authorization": {"bEaReR   k1 "}}, "", "k1", keyAuthorization},
		{"bare key", plain, http.Header{"Authorization": {"testkey"}}, "", "testkey", keyAuthorization},
		{"basic is not a key", plain, http.Header{"Authorization": {"Basic dXNlcjpwdw=="}}, "", "", keyNone},
		{"empty bearer", plain, http.Header{"Authorization": {"Bearer "}}, "", "", keyNone},
		{"header", both, http.Header{"X-Api-Key": {"k2"}}, "", "k2", keyHeader},
		{"header not configured", plain, http.Header{"X-Api-Key": {"k2"}}, "", "", keyNone},
		{"query", both, http.Header{}, "a=1&api_key=k3&b=2", "k3", keyQuery},
		{"query escaped", both, http.Header{}, "api%5Fkey=k%2B3", "k+3", keyQuery},
		{"query empty value skipped", both, http.Header{}, "api_key=&api_key=k4", "k4", keyQuery},
		{"query not configured", plain, http.Header{}, "api_key=k3", "", keyNone},
		{"header before query", both, http.Header{"X-Api-Key": {"k2"}}, "api_key=k3", "k2", keyHeader},
		{"query before authorization", both, http.Header{"Authorization": {"Bearer k1"}}, "api_key=k3", "k3", keyQuery},
		{"header with Basic for upstream", both, http.Header{"X-Api-Key": {"k2"}, "Authorization": {"Basic x"}}, "", "k2", keyHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, from := extractKey(tt.auth, tt.header, tt.query)
			if key != tt.wantKey || from != tt.wantFrom {
				t.Errorf("extractKey() = %q, %d, want %q, %d", key, from, tt.wantKey, tt.wantFrom)
			}
		})
	}
}

func TestStripQuery(t *testing.T) {
	tests := []struct {
		raw, name, want string
	}{
		{"", "api_key", ""},
		{"a=1&b=2", "api_key", "a=1&b=2"},
		{"api_key=k", "api_key", ""},
		{"a=1&api_key=k&b=%20x", "api_key", "a=1&b=%20x"},
		{"api_key=k&a=1&api_key=j", "api_key", "a=1"},
		{"api%5Fkey=k&a=1", "api_key", "a=1"},
		{"api_keys=1&xapi_key=2", "api_key", "api_keys=1&xapi_key=2"},
		{"api_key", "api_key", ""},
	}
	for _, tt := range tests {
		if got := stripQuery(tt.raw, tt.name); got != tt.want {
			t.Errorf("stripQuery(%q, %q) = %q, want %q", tt.raw, tt.name, got, tt.want)
		}
	}
}

// keyFixture is a real Index and Manager over a real store, with the Index
// loaded, plus a Local limiter and Quotas over the same store.
type keyFixture struct {
	st     *boltstore.Store
	path   string // of the store file
	idx    *apikey.Index
	mgr    *apikey.Manager
	lim    *ratelimit.Local
	quotas *ratelimit.Quotas
	adm    *admitter
}

// deps returns the fixture as a Proxy's collaborators.
func (f *keyFixture) deps() Deps {
	return Deps{Keys: f.idx, Limiter: f.lim, Quotas: f.quotas}
}

var admitNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// newKeyFixture opens a store in a new directory; see openKeyFixture.
func newKeyFixture(t testing.TB, managerNow func() time.Time) *keyFixture {
	t.Helper()
	return openKeyFixture(t, filepath.Join(t.TempDir(), "s.db"), managerNow)
}

// openKeyFixture opens the store file at path, with managerNow as the
// Manager's clock (creation and expiry checks).
func openKeyFixture(t testing.TB, path string, managerNow func() time.Time) *keyFixture {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := apikey.Config{Secret: []byte("0123456789abcdef0123456789abcdef"), Now: managerNow}
	f := &keyFixture{st: st, path: path}
	if f.idx, err = apikey.NewIndex(st, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if f.mgr, err = apikey.NewManager(st, f.idx, cfg, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.idx.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !f.idx.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the key index to load")
		}
	}
	if f.lim, err = ratelimit.NewLocal(ratelimit.LocalConfig{}); err != nil {
		t.Fatal(err)
	}
	if f.quotas, err = ratelimit.NewQuotas(st, ratelimit.QuotaConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	f.adm = &admitter{keys: f.idx, limiter: f.lim, quotas: f.quotas, log: discardLog()}
	return f
}

func (f *keyFixture) importKey(t testing.TB, value string, spec apikey.Spec) apikey.Key {
	t.Helper()
	k, err := f.mgr.Import(t.Context(), spec, value)
	if err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	return k
}

func routeNamed(s *snapshot.Snapshot, name string) *snapshot.Route {
	for _, r := range s.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func TestAdmit(t *testing.T) {
	f := newKeyFixture(t, func() time.Time { return admitNow })
	f.importKey(t, "open-key", apikey.Spec{})
	f.importKey(t, "orders-only", apikey.Spec{AllowedRoutes: []string{"orders"}})
	f.importKey(t, "svc-b-only", apikey.Spec{AllowedServices: []string{"b"}})
	f.importKey(t, "expiring", apikey.Spec{ExpiresAt: admitNow.Add(time.Hour)})
	revoked := f.importKey(t, "revoked-key", apikey.Spec{})
	if _, err := f.mgr.Revoke(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	on := &config.Auth{APIKey: true}
	snap := compile(t, config.Config{
		Services: []config.Service{{Name: "a"}, {Name: "b", Auth: on}},
		Routes: []config.Route{
			{Name: "open", Service: "a", Paths: []string{"/open"}},
			{Name: "orders", Service: "a", Paths: []string{"/orders"}, Auth: on},
			{Name: "users", Service: "a", Paths: []string{"/users"}, Auth: on},
			{Name: "b-route", Service: "b", Paths: []string{"/b"}},
		},
	}, 1)
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	tests := []struct {
		name        string
		route       string
		header      http.Header
		now         time.Time
		wantStatus  int
		wantFailure string
		wantKeyID   bool
	}{
		{"no auth needed", "open", http.Header{}, admitNow, 0, "", false},
		{"no auth needed, key ignored", "open", bearer("nonsense"), admitNow, 0, "", false},
		{"missing", "orders", http.Header{}, admitNow, 401, telemetry.AuthMissing, false},
		{"unknown", "orders", bearer("who-knows"), admitNow, 401, telemetry.AuthUnknown, false},
		{"revoked", "orders", bearer("revoked-key"), admitNow, 401, telemetry.AuthRevoked, true},
		{"valid before expiry", "orders", bearer("expiring"), admitNow, 0, "", true},
		{"expired", "orders", bearer("expiring"), admitNow.Add(2 * time.Hour), 401, telemetry.AuthExpired, true},
		{"allowed route", "orders", bearer("orders-only"), admitNow, 0, "", true},
		{"route not allowed", "users", bearer("orders-only"), admitNow, 403, telemetry.AuthForbidden, true},
		{"service auth", "b-route", bearer("open-key"), admitNow, 0, "", true},
		{"service auth missing", "b-route", http.Header{}, admitNow, 401, telemetry.AuthMissing, false},
		{"allowed service", "b-route", bearer("svc-b-only"), admitNow, 0, "", true},
		{"service not allowed", "orders", bearer("svc-b-only"), admitNow, 403, telemetry.AuthForbidden, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ad := f.adm.admit(t.Context(), routeNamed(snap, tt.route), admitRequest{Header: tt.header}, tt.now)
			if ad.status != tt.wantStatus || ad.authFailure != tt.wantFailure {
				t.Fatalf("admit() = %d %q (%s), want %d (%s)", ad.status, ad.reason, ad.authFailure, tt.wantStatus, tt.wantFailure)
			}
			if (ad.entry != nil) != tt.wantKeyID {
				t.Errorf("admit() entry = %v, want one: %v", ad.entry, tt.wantKeyID)
			}
			if ad.status == 401 && ad.challenge == "" {
				t.Errorf("401 without a WWW-Authenticate challenge")
			}
		})
	}

	t.Run("no key checker", func(t *testing.T) {
		a := &admitter{log: discardLog()}
		ad := a.admit(t.Context(), routeNamed(snap, "orders"), admitRequest{Header: bearer("open-key")}, admitNow)
		if ad.status != http.StatusServiceUnavailable {
			t.Errorf("admit() without keys = %d %q, want 503", ad.status, ad.reason)
		}
	})
	t.Run("keys not loaded", func(t *testing.T) {
		idx, err := apikey.NewIndex(nil, apikey.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := &admitter{keys: idx, log: discardLog()}
		ad := a.admit(t.Context(), routeNamed(snap, "orders"), admitRequest{Header: bearer("open-key")}, admitNow)
		if ad.status != http.StatusServiceUnavailable || ad.retryAfter == "" {
			t.Errorf("admit() before the keys loaded = %d %q (Retry-After %q), want 503 with Retry-After", ad.status, ad.reason, ad.retryAfter)
		}
	})
}

func TestAdmitLimits(t *testing.T) {
	f := newKeyFixture(t, func() time.Time { return admitNow })
	per := config.Duration(time.Minute)
	f.importKey(t, "limited-1", apikey.Spec{RateLimit: &apikey.Limit{Requests: 2, Per: per}})
	f.importKey(t, "limited-2", apikey.Spec{RateLimit: &apikey.Limit{Requests: 2, Per: per}})
	f.importKey(t, "quota-key", apikey.Spec{Quota: &apikey.Quota{Requests: 3, Period: apikey.PeriodDay}})
	snap := compile(t, config.Config{
		Services: []config.Service{{Name: "a"}},
		Routes: []config.Route{
			{Name: "keyed", Service: "a", Paths: []string{"/keyed"}, Auth: &config.Auth{APIKey: true}},
			{Name: "limited", Service: "a", Paths: []string{"/limited"}, RateLimit: &config.RateLimit{Requests: 3, Per: per}},
		},
	}, 1)
	admit := func(route, key string) admission {
		h := http.Header{}
		if key != "" {
			h.Set("Authorization", key)
		}
		return f.adm.admit(t.Context(), routeNamed(snap, route), admitRequest{Header: h}, admitNow)
	}

	// Route limit: a burst of 3, then 429 with headers.
	for i := range 3 {
		ad := admit("limited", "")
		if ad.status != 0 || !ad.limited || ad.limit.Remaining != 2-i {
			t.Fatalf("route request %d = %d, limited %v, remaining %d; want admitted with %d remaining", i+1, ad.status, ad.limited, ad.limit.Remaining, 2-i)
		}
	}
	ad := admit("limited", "")
	if ad.status != http.StatusTooManyRequests || ad.limitScope != telemetry.LimitRoute || ad.limit.RetryAfter <= 0 {
		t.Fatalf("4th route request = %d %q scope %q retry after %v, want 429 from the route limit", ad.status, ad.reason, ad.limitScope, ad.limit.RetryAfter)
	}
	h := http.Header{}
	writeLimitHeaders(h, &ad)
	for _, k := range []string{"Retry-After", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "Ratelimit-Policy"} {
		if h.Get(k) == "" {
			t.Errorf("429 headers lack %s: %v", k, h)
		}
	}

	// Key limit: per key.
	for _, key := range []string{"limited-1", "limited-1"} {
		if ad := admit("keyed", key); ad.status != 0 {
			t.Fatalf("request with %s = %d %q, want admitted", key, ad.status, ad.reason)
		}
	}
	if ad := admit("keyed", "limited-1"); ad.status != http.StatusTooManyRequests || ad.limitScope != telemetry.LimitKey {
		t.Fatalf("3rd request with limited-1 = %d %q, want 429 from the key limit", ad.status, ad.reason)
	}
	if ad := admit("keyed", "limited-2"); ad.status != 0 {
		t.Fatalf("first request with limited-2 = %d %q, want admitted (limits are per key)", ad.status, ad.reason)
	}

	// Quota.
	for i := range 3 {
		if ad := admit("keyed", "quota-key"); ad.status != 0 || ad.limit.Remaining != 2-i {
			t.Fatalf("quota request %d = %d %q remaining %d, want admitted, %d remaining", i+1, ad.status, ad.reason, ad.limit.Remaining, 2-i)
		}
	}
	ad = admit("keyed", "quota-key")
	if ad.status != http.StatusTooManyRequests || ad.limitScope != telemetry.LimitQuota || ad.limit.RetryAfter <= 0 {
		t.Fatalf("4th quota request = %d %q scope %q, want 429 from the quota with a Retry-After", ad.status, ad.reason, ad.limitScope)
	}
}

// An upstream's own RateLimit-* fields give way to the gateway's; its
// Retry-After stays.
func TestWriteLimitHeaders(t *testing.T) {
	h := http.Header{"Ratelimit-Policy": {"1;w=1"}, "Ratelimit-Remaining": {"0"}, "Retry-After": {"30"}}
	ad := admission{limited: true, limit: ratelimit.Decision{Allowed: true, Limit: 10, Remaining: 7, Reset: time.Second}}
	writeLimitHeaders(h, &ad)
	if h.Get("Ratelimit-Remaining") != "7" || h.Get("Ratelimit-Policy") != "" || h.Get("Retry-After") != "30" {
		t.Errorf("headers = %v, want the gateway's RateLimit-* only, and the upstream's Retry-After", h)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
