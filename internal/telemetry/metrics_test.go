package telemetry

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape fetches m's metrics through Handler over a real listener and parses
// the text exposition format.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics Content-Type = %q, want text/plain", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample returns the metric of family name whose labels are exactly labels.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the value of a counter or gauge sample, or NaN if absent.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := sample(fams, name, labels)
	switch {
	case m == nil:
		return math.NaN()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return math.NaN()
}

func TestMetricsValues(t *testing.T) {
	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	tests := []struct {
		name  string
		drive func(m *Metrics)
		want  []want
	}{
		{
			name: "requests by status class",
			drive: func(m *Metrics) {
				m.ObserveRequest("users", "users-svc", 200, 30*time.Millisecond)
				m.ObserveRequest("users", "users-svc", 204, 30*time.Millisecond)
				m.ObserveRequest("users", "users-svc", 503, 2*time.Second)
				m.ObserveRequest("users", "users-svc", 101, time.Millisecond)
				m.ObserveRequest("users", "users-svc", 0, time.Millisecond)
			},
			want: []want{
				{"gatehouse_requests_total", map[string]string{"route": "users", "service": "users-svc", "code_class": "2xx"}, 2},
				{"gatehouse_requests_total", map[string]string{"route": "users", "service": "users-svc", "code_class": "5xx"}, 1},
				{"gatehouse_requests_total", map[string]string{"route": "users", "service": "users-svc", "code_class": "1xx"}, 1},
				{"gatehouse_requests_total", map[string]string{"route": "users", "service": "users-svc", "code_class": "other"}, 1},
			},
		},
		{
			name: "unmatched request",
			drive: func(m *Metrics) {
				m.ObserveRequest("", "", 404, time.Millisecond)
				m.RateLimited("", LimitRoute)
				m.AuthFailure("", AuthMissing)
			},
			want: []want{
				{"gatehouse_requests_total", map[string]string{"route": "_unmatched", "service": "", "code_class": "4xx"}, 1},
				{"gatehouse_ratelimit_rejections_total", map[string]string{"route": "_unmatched", "scope": "route"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "_unmatched", "reason": "missing"}, 1},
			},
		},
		{
			name: "upstream attempts, retries, budget",
			drive: func(m *Metrics) {
				m.UpstreamAttempt("orders", true)
				m.UpstreamAttempt("orders", true)
				m.UpstreamAttempt("orders", false)
				m.Retry("orders", RetryNotSent)
				m.Retry("orders", RetryTimeout)
				m.Retry("orders", RetryStatus)
				m.Retry("orders", RetryStatus)
				m.Retry("orders", "/some/raw/path")
				m.RetryBudgetExhausted("orders")
			},
			want: []want{
				{"gatehouse_upstream_attempts_total", map[string]string{"service": "orders", "outcome": "success"}, 2},
				{"gatehouse_upstream_attempts_total", map[string]string{"service": "orders", "outcome": "failure"}, 1},
				{"gatehouse_retries_total", map[string]string{"service": "orders", "reason": "not_sent"}, 1},
				{"gatehouse_retries_total", map[string]string{"service": "orders", "reason": "timeout"}, 1},
				{"gatehouse_retries_total", map[string]string{"service": "orders", "reason": "status"}, 2},
				{"gatehouse_retries_total", map[string]string{"service": "orders", "reason": "other"}, 1},
				{"gatehouse_retry_budget_exhausted_total", map[string]string{"service": "orders"}, 1},
			},
		},
		{
			name: "replicas",
			drive: func(m *Metrics) {
				m.ReplicaState("orders", "r1", ReplicaEjected)
				m.ReplicaState("orders", "r2", ReplicaProbing)
				m.ReplicaState("orders", "r2", ReplicaUnhealthy)
				m.ReplicaState("orders", "r3", ReplicaHealthy)
				m.Ejection("orders", "r1")
				m.Ejection("orders", "r1")
			},
			want: []want{
				{"gatehouse_replica_state", map[string]string{"service": "orders", "replica": "r1"}, 1},
				{"gatehouse_replica_state", map[string]string{"service": "orders", "replica": "r2"}, 3},
				{"gatehouse_replica_state", map[string]string{"service": "orders", "replica": "r3"}, 0},
				{"gatehouse_ejections_total", map[string]string{"service": "orders", "replica": "r1"}, 2},
			},
		},
		{
			name: "limits and auth",
			drive: func(m *Metrics) {
				m.RateLimited("users", LimitKey)
				m.RateLimited("users", LimitQuota)
				m.RateLimited("users", LimitQuota)
				m.RateLimited("users", "bogus")
				m.AuthFailure("users", AuthUnknown)
				m.AuthFailure("users", AuthRevoked)
				m.AuthFailure("users", AuthExpired)
				m.AuthFailure("users", AuthForbidden)
				m.AuthFailure("users", "gh_secretkeyvalue")
			},
			want: []want{
				{"gatehouse_ratelimit_rejections_total", map[string]string{"route": "users", "scope": "key"}, 1},
				{"gatehouse_ratelimit_rejections_total", map[string]string{"route": "users", "scope": "quota"}, 2},
				{"gatehouse_ratelimit_rejections_total", map[string]string{"route": "users", "scope": "other"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "users", "reason": "unknown"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "users", "reason": "revoked"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "users", "reason": "expired"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "users", "reason": "forbidden"}, 1},
				{"gatehouse_auth_failures_total", map[string]string{"route": "users", "reason": "other"}, 1},
			},
		},
		{
			name: "gauges and store errors",
			drive: func(m *Metrics) {
				m.ConfigRevision(41)
				m.ConfigRevision(42)
				m.StoreError("put")
				m.StoreError("put")
				m.StoreError("watch")
				m.InFlight(1)
				m.InFlight(1)
				m.InFlight(1)
				m.InFlight(-1)
			},
			want: []want{
				{"gatehouse_config_revision", map[string]string{}, 42},
				{"gatehouse_store_errors_total", map[string]string{"op": "put"}, 2},
				{"gatehouse_store_errors_total", map[string]string{"op": "watch"}, 1},
				{"gatehouse_inflight_requests", map[string]string{}, 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			tt.drive(m)
			fams := scrape(t, m)
			for _, w := range tt.want {
				if got := value(fams, w.name, w.labels); got != w.value {
					t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
				}
			}
		})
	}
}

func TestMetricsDurationHistogram(t *testing.T) {
	m := NewMetrics()
	for _, d := range []time.Duration{500 * time.Microsecond, 30 * time.Millisecond, 30 * time.Millisecond, 2 * time.Second, 20 * time.Second} {
		m.ObserveRequest("users", "users-svc", 200, d)
	}
	s := sample(scrape(t, m), "gatehouse_request_duration_seconds", map[string]string{"route": "users", "service": "users-svc"})
	if s == nil {
		t.Fatal("gatehouse_request_duration_seconds{route=users,service=users-svc} missing")
	}
	h := s.GetHistogram()
	if got, want := h.GetSampleCount(), uint64(5); got != want {
		t.Errorf("sample count = %d, want %d", got, want)
	}
	if got, want := h.GetSampleSum(), 22.0605; math.Abs(got-want) > 1e-9 {
		t.Errorf("sample sum = %v, want %v", got, want)
	}
	wantCum := map[float64]uint64{0.001: 1, 0.025: 1, 0.05: 3, 1: 3, 2.5: 4, 10: 4}
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		if want, ok := wantCum[b.GetUpperBound()]; ok && b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v = %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if got, want := bounds, append(durationBuckets[:len(durationBuckets):len(durationBuckets)], math.Inf(1)); !equalFloats(got, want) {
		t.Errorf("buckets = %v, want %v", got, want)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMetricsLabelsBounded(t *testing.T) {
	m := NewMetrics()
	// What a proxy sees for a request to an unknown path with a key in the
	// query: none of it may reach a label.
	m.ObserveRequest("", "", 404, time.Millisecond)
	m.ObserveRequest("users", "users-svc", 200, time.Millisecond)
	m.UpstreamAttempt("users-svc", true)
	m.AuthFailure("users", "/v1/users?api_key=gh_secret")
	m.RateLimited("users", "/v1/users")
	m.Retry("users-svc", "/v1/users")
	for name, f := range scrape(t, m) {
		if !strings.HasPrefix(name, "gatehouse_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if strings.Contains(l.GetValue(), "/") || strings.Contains(l.GetValue(), "secret") {
					t.Errorf("%s label %s = %q, want no raw path or key", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestMetricsForget(t *testing.T) {
	drive := func(m *Metrics) {
		for _, route := range []string{"users", "orders"} {
			m.ObserveRequest(route, "svc-"+route, 200, time.Millisecond)
			m.RateLimited(route, LimitKey)
			m.AuthFailure(route, AuthUnknown)
		}
		for _, svc := range []string{"svc-users", "svc-orders"} {
			m.UpstreamAttempt(svc, true)
			m.Retry(svc, RetryTimeout)
			m.RetryBudgetExhausted(svc)
			for _, r := range []string{"r1", "r2"} {
				m.ReplicaState(svc, r, ReplicaEjected)
				m.Ejection(svc, r)
			}
		}
	}
	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	var (
		users    = map[string]string{"route": "users", "service": "svc-users", "code_class": "2xx"}
		orders   = map[string]string{"route": "orders", "service": "svc-orders", "code_class": "2xx"}
		attempts = map[string]string{"service": "svc-users", "outcome": "success"}
		r1       = map[string]string{"service": "svc-users", "replica": "r1"}
		r2       = map[string]string{"service": "svc-users", "replica": "r2"}
	)
	tests := []struct {
		name   string
		forget func(m *Metrics)
		gone   map[string]string // labels no series may carry after forget
		kept   map[string]string // labels some series must still carry
		// again is what the counters read after driving once more: what
		// was forgotten counts from zero, and is visible (a stale cached
		// series would make its increments vanish); the rest goes on.
		again []want
	}{
		{
			name:   "route",
			forget: func(m *Metrics) { m.ForgetRoute("users") },
			gone:   map[string]string{"route": "users"},
			kept:   map[string]string{"route": "orders"},
			again: []want{
				{"gatehouse_requests_total", users, 1},
				{"gatehouse_requests_total", orders, 2},
				{"gatehouse_upstream_attempts_total", attempts, 2},
				{"gatehouse_ejections_total", r1, 2},
			},
		},
		{
			name:   "service",
			forget: func(m *Metrics) { m.ForgetService("svc-users") },
			gone:   map[string]string{"service": "svc-users"},
			kept:   map[string]string{"service": "svc-orders"},
			again: []want{
				{"gatehouse_requests_total", users, 1},
				{"gatehouse_requests_total", orders, 2},
				{"gatehouse_upstream_attempts_total", attempts, 1},
				{"gatehouse_ejections_total", r1, 1},
			},
		},
		{
			name:   "replica",
			forget: func(m *Metrics) { m.ForgetReplica("svc-users", "r1") },
			gone:   r1,
			kept:   r2,
			again: []want{
				{"gatehouse_requests_total", users, 2},
				{"gatehouse_upstream_attempts_total", attempts, 2},
				{"gatehouse_ejections_total", r1, 1},
				{"gatehouse_ejections_total", r2, 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics()
			drive(m)
			tt.forget(m)
			var kept int
			for name, f := range scrape(t, m) {
				for _, s := range f.GetMetric() {
					if hasLabels(s, tt.gone) {
						t.Errorf("%s%v still present after forget", name, labelMap(s))
					}
					if hasLabels(s, tt.kept) {
						kept++
					}
				}
			}
			if kept == 0 {
				t.Errorf("no series with %v left, want the others kept", tt.kept)
			}

			drive(m)
			fams := scrape(t, m)
			for _, w := range tt.again {
				if got := value(fams, w.name, w.labels); got != w.value {
					t.Errorf("forget, drive again: %s%v = %v, want %v", w.name, w.labels, got, w.value)
				}
			}
		})
	}
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	got := labelMap(s)
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func labelMap(s *dto.Metric) map[string]string {
	m := make(map[string]string, len(s.GetLabel()))
	for _, l := range s.GetLabel() {
		m[l.GetName()] = l.GetValue()
	}
	return m
}

func TestMetricsPrivateRegistry(t *testing.T) {
	a, b := NewMetrics(), NewMetrics() // a global registry would panic here
	a.ConfigRevision(1)
	b.ConfigRevision(2)
	for _, tt := range []struct {
		m    *Metrics
		want float64
	}{{a, 1}, {b, 2}} {
		if got := value(scrape(t, tt.m), "gatehouse_config_revision", map[string]string{}); got != tt.want {
			t.Errorf("gatehouse_config_revision = %v, want %v", got, tt.want)
		}
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather default registry: %v", err)
	}
	var leaked []string
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "gatehouse_") {
			leaked = append(leaked, f.GetName())
		}
	}
	sort.Strings(leaked)
	if len(leaked) > 0 {
		t.Errorf("default registry has %v, want no gatehouse metrics", leaked)
	}
}

func TestObserveRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation budget not checked under the race detector")
	}
	m := NewMetrics()
	m.ObserveRequest("users", "users-svc", 200, time.Millisecond)
	m.UpstreamAttempt("users-svc", true)
	if got := testing.AllocsPerRun(100, func() {
		m.ObserveRequest("users", "users-svc", 200, time.Millisecond)
		m.UpstreamAttempt("users-svc", true)
		m.InFlight(1)
		m.InFlight(-1)
	}); got != 0 {
		t.Errorf("ObserveRequest+UpstreamAttempt+InFlight allocs = %v, want 0", got)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("users", "users-svc", 200, 3*time.Millisecond)
	}
}

func BenchmarkObserveRequestParallel(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("users", "users-svc", 200, 3*time.Millisecond)
		}
	})
}
