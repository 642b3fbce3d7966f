package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// newMetricsEnv is newEnv with real telemetry.Metrics behind /metrics, or
// none when m is nil.
func newMetricsEnv(t *testing.T, cfg admin.Config, m *telemetry.Metrics) *env {
	t.Helper()
	e := newEnv(t, admin.Config{}) // for its store, registry and status
	deps := admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status}
	if m != nil {
		deps.Metrics = m.Handler()
	}
	h, err := admin.New(deps, cfg, nil)
	if err != nil {
		t.Fatalf("admin.New() error = %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func TestMetricsEndpoint(t *testing.T) {
	m := telemetry.NewMetrics()
	m.ConfigRevision(42)
	m.ObserveRequest("orders", "orders-svc", 200, 0)

	tests := []struct {
		name    string
		cfg     admin.Config
		metrics *telemetry.Metrics
		header  string // the Authorization header
		want    int
	}{
		{"no token configured", admin.Config{}, m, "", http.StatusOK},
		{"admin token, none sent", admin.Config{AdminToken: adminToken}, m, "", http.StatusUnauthorized},
		{"admin token, wrong one", admin.Config{AdminToken: adminToken}, m, "Bearer nope", http.StatusUnauthorized},
		{"admin token sent", admin.Config{AdminToken: adminToken}, m, "Bearer " + adminToken, http.StatusOK},
		{"register token is not enough", admin.Config{AdminToken: adminToken, RegisterToken: registerToken}, m, "Bearer " + registerToken, http.StatusForbidden},
		{"public metrics, no token", admin.Config{AdminToken: adminToken, PublicMetrics: true}, m, "", http.StatusOK},
		{"public metrics, any token ignored", admin.Config{AdminToken: adminToken, PublicMetrics: true}, m, "Bearer nope", http.StatusOK},
		{"no metrics", admin.Config{}, nil, "", http.StatusNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMetricsEnv(t, tt.cfg, tt.metrics)
			r := e.doHeader(t, "GET", "/metrics", tt.header, "")
			if r.status != tt.want {
				t.Fatalf("GET /metrics with %q = %d %s, want %d", redact(tt.header), r.status, r.body, tt.want)
			}
			if r.status != http.StatusOK {
				return
			}
			for _, want := range []string{
				"gatehouse_config_revision 42",
				`gatehouse_requests_total{code_class="2xx",route="orders",service="orders-svc"} 1`,
			} {
				if !strings.Contains(r.body, want) {
					t.Errorf("GET /metrics lacks %q:\n%.2000s", want, r.body)
				}
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want the text exposition format", ct)
			}
		})
	}

	// PublicMetrics opens /metrics only.
	e := newMetricsEnv(t, admin.Config{AdminToken: adminToken, PublicMetrics: true}, m)
	if r := e.doHeader(t, "GET", "/config", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("GET /config without a token, PublicMetrics set = %d, want 401", r.status)
	}
	if r := e.doHeader(t, "POST", "/metrics", "", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", r.status)
	}
}
