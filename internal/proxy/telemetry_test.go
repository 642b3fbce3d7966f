package proxy

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/config"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// scrape returns m's exposition, as GET /metrics serves it.
func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// sample returns the value of the series named by prefix (name and
// labels, in the exposition's sorted label order), or -1 if it is absent.
func sample(exposition, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// accessLine is an access log line, as far as these tests read it.
type accessLine struct {
	Path     string `json:"path"`
	Route    string `json:"route"`
	Service  string `json:"service"`
	Replica  string `json:"replica"`
	Status   int    `json:"status"`
	Bytes    int64  `json:"bytes"`
	Attempts int    `json:"attempts"`
	KeyID    string `json:"key_id"`
	TraceID  string `json:"trace_id"`
	ClientIP string `json:"client_ip"`
}

func parseAccessLog(t *testing.T, log string) []accessLine {
	t.Helper()
	var lines []accessLine
	for line := range strings.Lines(log) {
		var l accessLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("access log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestMetricsAndAccessLog(t *testing.T) {
	f := newKeyFixture(t, nil)
	key := f.importKey(t, "testkey", apikey.Spec{})
	up := echoUpstream(t, "svc")
	c := keyedConfig(up.URL)
	// A service with a dead replica beside a live one: round robin sends
	// one of any two requests to the dead one first, and it is retried.
	c.Services = append(c.Services, service("flaky", deadAddress(t), up.URL))
	c.Routes = append(c.Routes, route("retried", "flaky", "/retried"))
	metrics := telemetry.NewMetrics()
	var logBuf logBuffer
	deps := f.deps()
	deps.Metrics, deps.AccessLog = metrics, telemetry.NewAccessLog(&logBuf, true)
	g := startGatewayWith(t, Config{}, c, deps)

	send := func(path string, want int, header ...string) {
		t.Helper()
		resp := g.get(t, path, header...)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	send("/open/1", 200)
	send("/open/2?secret=x", 200)
	send("/keyed/1?api_key=testkey", 200)
	send("/keyed/1", 401)
	send("/keyed/1", 401, "Authorization", "Bearer who-knows")
	for range 3 {
		send("/limited/1", 200)
	}
	send("/limited/1", 429)
	send("/retried/1", 200)
	send("/retried/2", 200)
	send("/nowhere", 404)
	// Reports are made as the handler returns, just after the client has
	// the response.
	eventually(t, "12 requests reported", func() bool { return strings.Count(logBuf.String(), "\n") == 12 })

	got := scrape(t, metrics)
	for series, want := range map[string]float64{
		`gatehouse_requests_total{code_class="2xx",route="open",service="svc"}`:      2,
		`gatehouse_requests_total{code_class="2xx",route="keyed",service="svc"}`:     1,
		`gatehouse_requests_total{code_class="4xx",route="keyed",service="svc"}`:     2,
		`gatehouse_requests_total{code_class="2xx",route="limited",service="svc"}`:   3,
		`gatehouse_requests_total{code_class="4xx",route="limited",service="svc"}`:   1,
		`gatehouse_requests_total{code_class="2xx",route="retried",service="flaky"}`: 2,
		`gatehouse_requests_total{code_class="4xx",route="_unmatched",service=""}`:   1,
		`gatehouse_request_duration_seconds_count{route="open",service="svc"}`:       2,
		`gatehouse_auth_failures_total{reason="missing",route="keyed"}`:              1,
		`gatehouse_auth_failures_total{reason="unknown",route="keyed"}`:              1,
		`gatehouse_ratelimit_rejections_total{route="limited",scope="route"}`:        1,
		`gatehouse_upstream_attempts_total{outcome="success",service="svc"}`:         6,
		`gatehouse_upstream_attempts_total{outcome="success",service="flaky"}`:       2,
		`gatehouse_inflight_requests`:                                                0,
		`gatehouse_retry_budget_exhausted_total{service="flaky"}`:                    -1,
	} {
		if v := sample(got, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	for _, secret := range []string{"testkey", "who-knows", "/open/1", "/keyed/1", "secret=x", "/nowhere"} {
		if strings.Contains(got, secret) {
			t.Errorf("the scrape holds %q (a key or a raw path)", secret)
		}
	}

	lines := parseAccessLog(t, logBuf.String())
	byPath := func(path string, status int) accessLine {
		t.Helper()
		for _, l := range lines {
			if l.Path == path && l.Status == status {
				return l
			}
		}
		t.Fatalf("no access log line for %s with status %d in:\n%s", path, status, logBuf.String())
		return accessLine{}
	}
	keyed := byPath("/keyed/1", 200)
	if keyed.KeyID != key.ID || keyed.Attempts != 1 || keyed.Route != "keyed" || keyed.Service != "svc" ||
		keyed.Replica != "static:"+up.URL || keyed.Bytes <= 0 || keyed.ClientIP != "127.0.0.1" {
		t.Errorf("access log line of the keyed request = %+v, want key_id %s, 1 attempt, route keyed, its replica, bytes, client 127.0.0.1", keyed, key.ID)
	}
	if l := byPath("/keyed/1", 401); l.KeyID != "" || l.Attempts != 0 || l.Bytes == 0 {
		t.Errorf("access log line of a refused request = %+v, want no key_id, 0 attempts and the error's bytes", l)
	}
	if l := byPath("/nowhere", 404); l.Route != "" || l.Bytes == 0 {
		t.Errorf("access log line of an unrouted request = %+v, want no route and the error's bytes", l)
	}
	// Whether one or both requests met the dead replica first depends on
	// where round robin starts; every such attempt failed and was retried.
	retries := byPath("/retried/1", 200).Attempts + byPath("/retried/2", 200).Attempts - 2
	if retries < 1 {
		t.Errorf("access log attempts of the two retried-route requests add up to %d, want at least one retry", retries+2)
	}
	for _, series := range []string{
		`gatehouse_retries_total{reason="not_sent",service="flaky"}`,
		`gatehouse_upstream_attempts_total{outcome="failure",service="flaky"}`,
	} {
		if v := sample(got, series); v != float64(retries) {
			t.Errorf("%s = %v, want %d (the retries in the access log)", series, v, retries)
		}
	}
	for _, secret := range []string{"testkey", "who-knows", "api_key", "secret=x"} {
		if strings.Contains(logBuf.String(), secret) {
			t.Errorf("the access log holds %q:\n%s", secret, logBuf.String())
		}
	}
}

// otlpReceiver is a real OTLP/HTTP traces endpoint: it decodes what the
// exporter POSTs to /v1/traces and keeps the spans.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || err != nil || proto.Unmarshal(raw, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rcv.spans = append(rcv.spans, ss.GetSpans()...)
			}
		}
		rcv.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

func (rcv *otlpReceiver) received() []*tracepb.Span {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]*tracepb.Span(nil), rcv.spans...)
}

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingParent  = "00-" + incomingTraceID + "-00f067aa0ba902b7-01"
)

func TestTracing(t *testing.T) {
	up := echoUpstream(t, "svc")
	c := config.Config{Services: []config.Service{service("svc", up.URL)}, Routes: []config.Route{route("users", "svc", "/users")}}

	t.Run("exported over OTLP/HTTP", func(t *testing.T) {
		rcv := newOTLPReceiver(t)
		env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.srv.URL}
		tc, err := telemetry.TracingConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		tr, err := telemetry.NewTracing(t.Context(), tc, nil)
		if err != nil {
			t.Fatal(err)
		}
		var logBuf logBuffer
		g := startGatewayWith(t, Config{}, c, Deps{Tracing: tr, AccessLog: telemetry.NewAccessLog(&logBuf, true)})

		for _, incoming := range []string{incomingParent, ""} {
			var header []string
			if incoming != "" {
				header = []string{"Traceparent", incoming}
			}
			s := decodeSeen(t, g.get(t, "/users/1", header...))
			tp := s.Header.Get("Traceparent")
			parts := strings.Split(tp, "-")
			if len(parts) != 4 || len(parts[1]) != 32 {
				t.Fatalf("upstream traceparent = %q, want one", tp)
			}
			if incoming != "" && (parts[1] != incomingTraceID || tp == incoming) {
				t.Errorf("upstream traceparent = %q, want trace %s with the gateway's span as parent", tp, incomingTraceID)
			}
		}
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		spans := rcv.received()
		if len(spans) != 2 {
			t.Fatalf("receiver got %d spans, want 2", len(spans))
		}
		eventually(t, "2 access log lines", func() bool { return strings.Count(logBuf.String(), "\n") == 2 })
		lines := parseAccessLog(t, logBuf.String())
		for i, sp := range spans {
			id := hex.EncodeToString(sp.GetTraceId())
			if sp.GetName() != "GET users" {
				t.Errorf("span %d name = %q, want GET users", i, sp.GetName())
			}
			if i == 0 && id != incomingTraceID {
				t.Errorf("span 0 trace id = %s, want the incoming %s", id, incomingTraceID)
			}
			if lines[i].TraceID != id {
				t.Errorf("access log trace_id = %q, want the span's %s", lines[i].TraceID, id)
			}
		}
	})

	t.Run("disabled: traceparent passes unchanged", func(t *testing.T) {
		var logBuf logBuffer
		g := startGatewayWith(t, Config{}, c, Deps{AccessLog: telemetry.NewAccessLog(&logBuf, true)})
		s := decodeSeen(t, g.get(t, "/users/1", "Traceparent", incomingParent, "Tracestate", "vendor=abc"))
		if got := s.Header.Get("Traceparent"); got != incomingParent {
			t.Errorf("upstream traceparent = %q, want the incoming %q", got, incomingParent)
		}
		if got := s.Header.Get("Tracestate"); got != "vendor=abc" {
			t.Errorf("upstream tracestate = %q, want vendor=abc", got)
		}
		s = decodeSeen(t, g.get(t, "/users/2"))
		if got := s.Header.Get("Traceparent"); got != "" {
			t.Errorf("upstream traceparent = %q for a request without one, want none", got)
		}
		eventually(t, "2 access log lines", func() bool { return strings.Count(logBuf.String(), "\n") == 2 })
		if l := parseAccessLog(t, logBuf.String()); l[0].TraceID != incomingTraceID || l[1].TraceID != "" {
			t.Errorf("access log trace ids = %q, %q; want %s and none", l[0].TraceID, l[1].TraceID, incomingTraceID)
		}
	})
}
