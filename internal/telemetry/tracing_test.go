package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a real OTLP/HTTP traces endpoint: it decodes what the
// exporter POSTs to /v1/traces and keeps the spans.
type otlpReceiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	spans     []*tracepb.Span
	resources []map[string]string
	gzipped   bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(rcv.serve))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

func (rcv *otlpReceiver) endpoint() string { return rcv.srv.URL + "/v1/traces" }

func (rcv *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	gzipped := r.Header.Get("Content-Encoding") == "gzip"
	if gzipped {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	rcv.gzipped = rcv.gzipped || gzipped
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				rcv.spans = append(rcv.spans, s)
				rcv.resources = append(rcv.resources, res)
			}
		}
	}
	rcv.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}

// upstream is a real server that records the trace headers it receives.
func upstream(t *testing.T) (*httptest.Server, <-chan http.Header) {
	t.Helper()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// forward does what the proxy does with trace context: start the span,
// copy the client's end-to-end headers, inject, call the upstream over a
// real socket, end the span. It returns the header the upstream received
// and the span's trace ID.
func forward(t *testing.T, tr *Tracing, in *http.Request, status int, route, service string, err error) (http.Header, string) {
	t.Helper()
	up, got := upstream(t)
	ctx, span := tr.Start(in.Context(), in)
	out, rerr := http.NewRequestWithContext(ctx, http.MethodGet, up.URL, nil)
	if rerr != nil {
		t.Fatal(rerr)
	}
	out.Header = in.Header.Clone()
	tr.Inject(ctx, out.Header)
	resp, rerr := http.DefaultClient.Do(out)
	if rerr != nil {
		t.Fatalf("upstream request: %v", rerr)
	}
	resp.Body.Close()
	span.End(status, route, service, err)
	return <-got, span.TraceID()
}

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	incomingParent  = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

func TestTracingExportsServerSpan(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		traceparent string
		tracestate  string
		wantChild   bool   // the span's parent is the incoming traceparent's
		wantState   string // the upstream tracestate
		gzipEnv     bool
		status      int
		route       string
		err         error
		wantName    string
		wantAttrs   map[string]string // "" value: attribute must be absent
		wantError   bool
	}{
		{
			name:        "child of incoming traceparent",
			method:      "GET",
			traceparent: incomingParent,
			tracestate:  "vendor=abc",
			wantChild:   true,
			wantState:   "vendor=abc",
			status:      200,
			route:       "users",
			wantName:    "GET users",
			wantAttrs: map[string]string{
				"http.request.method":       "GET",
				"http.route":                "users",
				"http.response.status_code": "200",
				"server.address":            "api.example.com",
				"gatehouse.service":         "users-svc",
				"url.path":                  "/v1/users/42",
				"url.scheme":                "http",
			},
		},
		{
			name:      "new trace, gzip export, 5xx",
			method:    "POST",
			gzipEnv:   true,
			status:    502,
			route:     "orders",
			wantName:  "POST orders",
			wantAttrs: map[string]string{"http.request.method": "POST", "http.response.status_code": "502", "http.route": "orders"},
			wantError: true,
		},
		{
			name:        "invalid traceparent: new trace, its tracestate dropped",
			method:      "GET",
			traceparent: "00-" + incomingTraceID + "-0000000000000000-01",
			tracestate:  "vendor=abc",
			status:      200,
			route:       "users",
			wantName:    "GET users",
		},
		{
			name:      "unmatched route and odd method",
			method:    "PURGE",
			status:    404,
			wantName:  "HTTP",
			wantAttrs: map[string]string{"http.request.method": "_OTHER", "http.route": "", "http.response.status_code": "404"},
		},
		{
			name:        "error",
			method:      "GET",
			traceparent: incomingParent,
			wantChild:   true,
			status:      504,
			route:       "users",
			err:         errors.New("upstream timeout"),
			wantName:    "GET users",
			wantAttrs:   map[string]string{"http.response.status_code": "504"},
			wantError:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gzipEnv {
				// Read by the exporter itself, as TracingConfigFromEnv documents.
				t.Setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
			}
			rcv := newOTLPReceiver(t)
			tr, err := NewTracing(t.Context(), TracingConfig{Endpoint: rcv.endpoint(), ServiceName: "gw-test"}, nil)
			if err != nil {
				t.Fatalf("NewTracing: %v", err)
			}
			if !tr.Enabled() {
				t.Fatal("Enabled() = false, want true")
			}
			in := httptest.NewRequest(tt.method, "http://api.example.com:8080/v1/users/42?api_key=gh_secret", nil)
			if tt.traceparent != "" {
				in.Header.Set("Traceparent", tt.traceparent)
			}
			if tt.tracestate != "" {
				in.Header.Set("Tracestate", tt.tracestate)
			}
			upHeader, traceID := forward(t, tr, in, tt.status, tt.route, "users-svc", tt.err)

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.spans) != 1 {
				t.Fatalf("receiver got %d spans, want 1", len(rcv.spans))
			}
			s := rcv.spans[0]
			if s.GetName() != tt.wantName {
				t.Errorf("span name = %q, want %q", s.GetName(), tt.wantName)
			}
			if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("span kind = %v, want SERVER", s.GetKind())
			}
			if got := rcv.resources[0]["service.name"]; got != "gw-test" {
				t.Errorf("resource service.name = %q, want gw-test", got)
			}
			if tt.gzipEnv && !rcv.gzipped {
				t.Errorf("export not gzipped, want OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip honoured")
			}
			attrs := attrMap(s.GetAttributes())
			for k, want := range tt.wantAttrs {
				if got, ok := attrs[k]; want == "" && ok {
					t.Errorf("attribute %s = %q, want absent", k, got)
				} else if want != "" && got != want {
					t.Errorf("attribute %s = %q, want %q", k, got, want)
				}
			}
			for k, v := range attrs {
				if strings.Contains(v, "api_key") || strings.Contains(v, "gh_secret") {
					t.Errorf("attribute %s = %q, want no query string", k, v)
				}
			}
			if got := s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR; got != tt.wantError {
				t.Errorf("span status error = %v, want %v (status %v)", got, tt.wantError, s.GetStatus())
			}

			spanTrace, spanID := hex.EncodeToString(s.GetTraceId()), hex.EncodeToString(s.GetSpanId())
			wantParent := ""
			if tt.wantChild {
				wantParent = incomingSpanID
				if spanTrace != incomingTraceID {
					t.Errorf("span trace id = %s, want the incoming %s", spanTrace, incomingTraceID)
				}
			}
			if got := hex.EncodeToString(s.GetParentSpanId()); got != wantParent {
				t.Errorf("span parent = %q, want %q", got, wantParent)
			}
			if traceID != spanTrace {
				t.Errorf("Span.TraceID() = %q, want %q", traceID, spanTrace)
			}

			up := upHeader.Get("Traceparent")
			if want := "00-" + spanTrace + "-" + spanID + "-01"; up != want {
				t.Errorf("upstream traceparent = %q, want %q (same trace, gateway span as parent)", up, want)
			}
			if got := upHeader.Get("Tracestate"); got != tt.wantState {
				t.Errorf("upstream tracestate = %q, want %q", got, tt.wantState)
			}
		})
	}
}

func TestTracingDisabledPropagates(t *testing.T) {
	disabled, err := NewTracing(t.Context(), TracingConfig{}, nil)
	if err != nil {
		t.Fatalf("NewTracing(zero config): %v", err)
	}
	tests := []struct {
		name        string
		tr          *Tracing
		traceparent string
		tracestate  string
		wantTraceID string
	}{
		{"valid traceparent forwarded unchanged", disabled, incomingParent, "vendor=abc", incomingTraceID},
		{"none is not invented", disabled, "", "", ""},
		{"invalid passes through, no trace id", disabled, "00-xyz-00f067aa0ba902b7-01", "", ""},
		{"nil Tracing", nil, incomingParent, "", incomingTraceID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tr.Enabled() {
				t.Fatal("Enabled() = true, want false")
			}
			in := httptest.NewRequest("GET", "http://api.example.com/v1/users", nil)
			if tt.traceparent != "" {
				in.Header.Set("Traceparent", tt.traceparent)
			}
			if tt.tracestate != "" {
				in.Header.Set("Tracestate", tt.tracestate)
			}
			upHeader, traceID := forward(t, tt.tr, in, 200, "users", "users-svc", nil)
			if got, ok := upHeader["Traceparent"]; tt.traceparent == "" && ok {
				t.Errorf("upstream traceparent = %q, want none invented", got)
			}
			if got := upHeader.Get("Traceparent"); got != tt.traceparent {
				t.Errorf("upstream traceparent = %q, want %q unchanged", got, tt.traceparent)
			}
			if got := upHeader.Get("Tracestate"); got != tt.tracestate {
				t.Errorf("upstream tracestate = %q, want %q unchanged", got, tt.tracestate)
			}
			if traceID != tt.wantTraceID {
				t.Errorf("Span.TraceID() = %q, want %q", traceID, tt.wantTraceID)
			}
			if err := tt.tr.Shutdown(t.Context()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

func TestTracingDisabledAllocs(t *testing.T) {
	tr, err := NewTracing(t.Context(), TracingConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest("GET", "http://api.example.com/v1/users", nil)
	in.Header.Set("Traceparent", incomingParent)
	out := in.Header.Clone()
	ctx := in.Context()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Start(ctx, in)
		tr.Inject(c, out)
		_ = span.TraceID()
		span.End(200, "users", "users-svc", nil)
	})
	if allocs != 0 {
		t.Errorf("disabled Start+Inject+TraceID+End allocs = %v, want 0", allocs)
	}
}

func TestTracingConfigFromEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		want        TracingConfig
		wantSampler string // Sampler.Description()
		wantErr     string
	}{
		{
			name:        "nothing set: disabled",
			env:         nil,
			want:        TracingConfig{ServiceName: "gatehouse"},
			wantSampler: "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}",
		},
		{
			name: "base endpoint gets /v1/traces",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", "OTEL_SERVICE_NAME": "edge"},
			want: TracingConfig{Endpoint: "http://collector:4318/v1/traces", ServiceName: "edge"},
		},
		{
			name: "traces endpoint used as is and wins",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/custom",
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
			},
			want: TracingConfig{Endpoint: "https://traces.example.com/custom", ServiceName: "gatehouse"},
		},
		{
			name:        "sampler arg alone: parent-based ratio",
			env:         map[string]string{"OTEL_TRACES_SAMPLER_ARG": "0.25"},
			want:        TracingConfig{ServiceName: "gatehouse"},
			wantSampler: "ParentBased{root:TraceIDRatioBased{0.25}",
		},
		{
			name:        "explicit sampler",
			env:         map[string]string{"OTEL_TRACES_SAMPLER": "always_off"},
			want:        TracingConfig{ServiceName: "gatehouse"},
			wantSampler: "AlwaysOffSampler",
		},
		{
			name: "sdk disabled",
			env:  map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: TracingConfig{},
		},
		{
			name:    "grpc protocol refused",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="grpc": only http/protobuf is supported`,
		},
		{
			name:    "http/json refused on the traces variable",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/json": only http/protobuf is supported`,
		},
		{
			name:    "endpoint without scheme",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"},
			wantErr: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: tracing endpoint",
		},
		{
			name:    "bad ratio",
			env:     map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1.5"},
			wantErr: `OTEL_TRACES_SAMPLER_ARG="1.5": want a ratio between 0 and 1`,
		},
		{
			name:    "unknown sampler",
			env:     map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
			wantErr: `OTEL_TRACES_SAMPLER="jaeger_remote"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TracingConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TracingConfigFromEnv() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TracingConfigFromEnv() error = %v", err)
			}
			if got.Endpoint != tt.want.Endpoint || got.ServiceName != tt.want.ServiceName {
				t.Errorf("TracingConfigFromEnv() = {Endpoint:%q ServiceName:%q}, want {Endpoint:%q ServiceName:%q}",
					got.Endpoint, got.ServiceName, tt.want.Endpoint, tt.want.ServiceName)
			}
			if tt.wantSampler != "" && (got.Sampler == nil || !strings.HasPrefix(got.Sampler.Description(), tt.wantSampler)) {
				desc := "<nil>"
				if got.Sampler != nil {
					desc = got.Sampler.Description()
				}
				t.Errorf("Sampler = %s, want %s", desc, tt.wantSampler)
			}
		})
	}
}

func TestTracingConfigValidate(t *testing.T) {
	tests := []struct {
		endpoint string
		wantErr  bool
	}{
		{"", false},
		{"http://localhost:4318/v1/traces", false},
		{"https://collector.example.com/v1/traces", false},
		{"ftp://collector/v1/traces", true},
		{"localhost:4318", true},
		{"http://", true},
		{"http://a b/", true},
	}
	for _, tt := range tests {
		err := TracingConfig{Endpoint: tt.endpoint}.Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("Validate(Endpoint %q) = %v, want error %v", tt.endpoint, err, tt.wantErr)
		}
		if _, nerr := NewTracing(t.Context(), TracingConfig{Endpoint: tt.endpoint}, nil); (nerr != nil) != tt.wantErr {
			t.Errorf("NewTracing(Endpoint %q) error = %v, want error %v", tt.endpoint, nerr, tt.wantErr)
		}
	}
}

func TestParentTraceID(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{incomingParent, incomingTraceID},
		{"00-" + incomingTraceID + "-" + incomingSpanID + "-00", incomingTraceID},
		{"01-" + incomingTraceID + "-" + incomingSpanID + "-01-future", incomingTraceID},
		{"", ""},
		{"00-" + incomingTraceID + "-" + incomingSpanID + "-01-extra", ""}, // version 00 is exactly 55 long
		{"ff-" + incomingTraceID + "-" + incomingSpanID + "-01", ""},
		{"00-00000000000000000000000000000000-" + incomingSpanID + "-01", ""},
		{"00-" + incomingTraceID + "-0000000000000000-01", ""},
		{"00-" + strings.ToUpper(incomingTraceID) + "-" + incomingSpanID + "-01", ""},
		{"00_" + incomingTraceID + "-" + incomingSpanID + "-01", ""},
		{"00-" + incomingTraceID + "-" + incomingSpanID + "-0g", ""},
	}
	for _, tt := range tests {
		if got := parentTraceID(tt.in); got != tt.want {
			t.Errorf("parentTraceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostOnly(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"api.example.com:8080", "api.example.com"},
		{"[::1]:8080", "::1"},
		{"[::1]", "::1"},
		{"::1", "::1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := hostOnly(tt.in); got != tt.want {
			t.Errorf("hostOnly(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLoggingExporter checks that a failed export reaches the injected
// logger: the receiver here refuses everything.
func TestLoggingExporter(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest) // 400 is not retried
	}))
	defer refuse.Close()
	var logs syncBuffer
	tr, err := NewTracing(t.Context(), TracingConfig{Endpoint: refuse.URL + "/v1/traces"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Start(t.Context(), httptest.NewRequest("GET", "http://x/", nil))
	span.End(200, "r", "s", nil)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "export spans failed") || !strings.Contains(got, "400") {
		t.Errorf("log = %q, want an export failure with the status", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkTracingDisabled(b *testing.B) {
	tr, _ := NewTracing(b.Context(), TracingConfig{}, nil)
	in := httptest.NewRequest("GET", "http://api.example.com/v1/users", nil)
	in.Header.Set("Traceparent", incomingParent)
	out := in.Header.Clone()
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := tr.Start(in.Context(), in)
		tr.Inject(ctx, out)
		span.End(200, "users", "users-svc", nil)
	}
}

func BenchmarkTracingEnabled(b *testing.B) {
	rcv := &otlpReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer rcv.srv.Close()
	tr, err := NewTracing(b.Context(), TracingConfig{Endpoint: rcv.endpoint()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	in := httptest.NewRequest("GET", "http://api.example.com/v1/users", nil)
	in.Header.Set("Traceparent", incomingParent)
	out := in.Header.Clone()
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := tr.Start(in.Context(), in)
		tr.Inject(ctx, out)
		span.End(200, "users", "users-svc", nil)
	}
}
