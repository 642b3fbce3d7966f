package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is the service.name of Gatehouse's spans when
// OTEL_SERVICE_NAME is not set.
const DefaultServiceName = "gatehouse"

// tracerName identifies the instrumentation library in exported spans.
const tracerName = "github.com/gatehouse-gw/gatehouse/internal/telemetry"

// TracingConfig says where and how to export traces. The zero value disables
// tracing (trace context is still propagated, see Tracing). Build it from the
// standard OpenTelemetry variables with TracingConfigFromEnv.
type TracingConfig struct {
	// Endpoint is the full URL spans are POSTed to with OTLP over HTTP in
	// protobuf, such as http://collector:4318/v1/traces; an http URL is
	// sent in clear. Empty disables tracing.
	Endpoint string
	// ServiceName is the service.name resource attribute; empty means
	// DefaultServiceName.
	ServiceName string
	// Sampler decides which new traces are recorded; nil means
	// sdktrace.ParentBased(sdktrace.AlwaysSample()), the OpenTelemetry
	// default: follow the caller's decision, record every new trace.
	Sampler sdktrace.Sampler
}

// Validate reports whether c is usable: Endpoint, when set, must be an
// absolute http or https URL.
func (c TracingConfig) Validate() error {
	if c.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return fmt.Errorf("tracing endpoint %q: %w", c.Endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("tracing endpoint %q: want an http:// or https:// URL with a host", c.Endpoint)
	}
	return nil
}

// TracingConfigFromEnv reads a TracingConfig from the standard OpenTelemetry
// environment variables through getenv (os.Getenv in main):
//
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the full traces URL, or else
//     OTEL_EXPORTER_OTLP_ENDPOINT, a base URL to which /v1/traces is
//     appended. Tracing is enabled only when one of them is set.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: only
//     http/protobuf is supported; any other value is an error.
//   - OTEL_SERVICE_NAME, default "gatehouse".
//   - OTEL_TRACES_SAMPLER (always_on, always_off, traceidratio,
//     parentbased_always_on, parentbased_always_off,
//     parentbased_traceidratio; default parentbased_always_on) and
//     OTEL_TRACES_SAMPLER_ARG, the ratio in [0, 1] of the ratio samplers.
//     The argument alone selects parentbased_traceidratio.
//   - OTEL_SDK_DISABLED=true disables tracing.
//
// Other OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression,
// certificates) are read by the exporter itself.
func TracingConfigFromEnv(getenv func(string) string) (TracingConfig, error) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := getenv(name); v != "" && v != "http/protobuf" {
			return TracingConfig{}, fmt.Errorf("%s=%q: only http/protobuf is supported; unset it or set it to http/protobuf", name, v)
		}
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return TracingConfig{}, nil
	}
	var c TracingConfig
	endpointVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if v := getenv(endpointVar); v != "" {
		c.Endpoint = v
	} else if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		endpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
		// The spec's rule for the signal-less variable: append the signal's
		// path to the base URL.
		c.Endpoint = strings.TrimRight(v, "/") + "/v1/traces"
	}
	if err := c.Validate(); err != nil {
		return TracingConfig{}, fmt.Errorf("%s: %w", endpointVar, err)
	}
	c.ServiceName = getenv("OTEL_SERVICE_NAME")
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	s, err := samplerFromEnv(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return TracingConfig{}, err
	}
	c.Sampler = s
	return c, nil
}

func samplerFromEnv(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" {
		r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1, such as 0.25", arg)
		}
		ratio = r
		if name == "" {
			name = "parentbased_traceidratio"
		}
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// Tracing starts a server span per proxied request and propagates W3C trace
// context (traceparent, tracestate) to the upstream request. It uses its own
// TracerProvider and propagator, never the otel globals. Methods are safe for
// concurrent use, and a nil *Tracing behaves as a disabled one.
//
// When tracing is disabled (no endpoint), Gatehouse propagates without
// sampling: it forwards an incoming traceparent unchanged, as the proxy
// forwards every end-to-end header, and does not invent one for a request
// that has none, since a trace no one records would only add a header. Start
// and End then cost a map lookup and no allocation.
type Tracing struct {
	tp     *sdktrace.TracerProvider // nil when disabled
	tracer trace.Tracer
	prop   propagation.TraceContext
}

// NewTracing returns a Tracing exporting to cfg.Endpoint through a batch span
// processor, or a disabled one if cfg.Endpoint is empty. log receives export
// failures; nil discards them. Call Shutdown to flush before exit.
func NewTracing(ctx context.Context, cfg TracingConfig, log *slog.Logger) (*Tracing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new tracing: %w", err)
	}
	if cfg.Endpoint == "" {
		return &Tracing{}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("new tracing: otlp exporter for %s: %w", cfg.Endpoint, err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	sampler := cfg.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, log: log}),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(sampler),
	)
	return &Tracing{tp: tp, tracer: tp.Tracer(tracerName)}, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// Shutdown flushes the spans not yet exported and stops the exporter. It
// returns when done or when ctx ends. A disabled Tracing has nothing to do.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// Start begins the server span of r, a child of the span in r's traceparent
// header if it has a valid one, and returns a context carrying it for Inject
// and the handler. The span is named after the method until End names it
// "<METHOD> <route>"; the raw path is never part of the name. Call End on the
// returned Span exactly once. Disabled: returns ctx unchanged, no allocation.
func (t *Tracing) Start(ctx context.Context, r *http.Request) (context.Context, Span) {
	if !t.Enabled() {
		var parent string
		if v := r.Header["Traceparent"]; len(v) > 0 {
			parent = v[0]
		}
		return ctx, Span{parent: parent}
	}
	ctx = t.prop.Extract(ctx, headerCarrier(r.Header))
	method, name := spanMethod(r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	ctx, span := t.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("server.address", hostOnly(r.Host)),
			attribute.String("url.scheme", scheme),
			// Path without the query string, which may carry an API key.
			attribute.String("url.path", r.URL.Path),
		))
	return ctx, Span{span: span, name: name}
}

// Inject writes the trace context of ctx's span, as returned by Start, into
// h, the upstream request's header: a traceparent with the request's trace
// ID whose parent is the gateway's span, replacing the one copied from the
// client, and the tracestate received, if any. Disabled, or without a span
// in ctx, h is left as it is, so a copied traceparent passes through.
func (t *Tracing) Inject(ctx context.Context, h http.Header) {
	if !t.Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	// A tracestate copied from the client belongs to its traceparent
	// (W3C Trace Context section 3.3); the span's own is re-injected below.
	delete(h, "Tracestate")
	t.prop.Inject(ctx, headerCarrier(h))
}

// Span is the server span of one request, returned by Tracing.Start. The
// zero value is a request without a span or trace context.
type Span struct {
	span   trace.Span // nil when tracing is disabled
	name   string     // the span name without the route
	parent string     // the incoming traceparent, when tracing is disabled
}

// End sets the span's final name and attributes and ends it: route is the
// matched route's name ("" when none matched), service the service chosen,
// status the status sent to the client, err the failure that caused it, if
// any. A status of 500 or more, or a non-nil err, marks the span as failed.
// Disabled: does nothing.
func (s Span) End(status int, route, service string, err error) {
	if s.span == nil {
		return
	}
	attrs := [3]attribute.KeyValue{attribute.Int("http.response.status_code", status)}
	n := 1
	if route != "" {
		s.span.SetName(s.name + " " + route)
		attrs[n] = attribute.String("http.route", route)
		n++
	}
	if service != "" {
		attrs[n] = attribute.String("gatehouse.service", service)
		n++
	}
	s.span.SetAttributes(attrs[:n]...)
	switch {
	case err != nil:
		s.span.RecordError(err)
		s.span.SetStatus(codes.Error, err.Error())
	case status >= 500:
		// Server spans fail on 5xx only: a 4xx is the client's error
		// (OpenTelemetry HTTP semantic conventions, "Status").
		s.span.SetStatus(codes.Error, "")
	}
	s.span.End()
}

// TraceID returns the request's trace ID in lowercase hex, for the access
// log: the span's when tracing is enabled, else the incoming traceparent's,
// or "" when it has none or an invalid one.
func (s Span) TraceID() string {
	if s.span != nil {
		if sc := s.span.SpanContext(); sc.HasTraceID() {
			return sc.TraceID().String()
		}
		return ""
	}
	return parentTraceID(s.parent)
}

// parentTraceID returns the trace-id field of the traceparent header value
// v, or "" if v is not a valid traceparent (W3C Trace Context section 3.2).
func parentTraceID(v string) string {
	// version "-" trace-id "-" parent-id "-" trace-flags
	const size = 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(v) < size || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return ""
	}
	version := v[:2]
	if !isLowerHex(version) || version == "ff" ||
		(len(v) > size && (version == "00" || v[size] != '-')) {
		return ""
	}
	id, parent := v[3:35], v[36:52]
	if !isLowerHex(id) || !isLowerHex(parent) || !isLowerHex(v[53:55]) ||
		id == "00000000000000000000000000000000" || parent == "0000000000000000" {
		return ""
	}
	return id
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// spanMethod returns the http.request.method attribute and the span name
// prefix for method. Methods other than RFC 9110's and PATCH become
// "_OTHER" and "HTTP", as the semantic conventions ask, so a client cannot
// create span names at will.
func spanMethod(method string) (attr, name string) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return method, method
	}
	return "_OTHER", "HTTP"
}

// hostOnly returns the host of a Host header value, without port or IPv6
// brackets.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

// headerCarrier is propagation.HeaderCarrier without its cost per call: the
// TraceContext propagator names its headers in lowercase, and canonicalizing
// them allocates a new string on every Get and Set.
type headerCarrier http.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func traceHeaderKey(k string) string {
	switch k {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	}
	return http.CanonicalHeaderKey(k)
}

// Get returns the first value of the header key.
func (c headerCarrier) Get(key string) string {
	if v := c[traceHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of the header key with value.
func (c headerCarrier) Set(key, value string) {
	c[traceHeaderKey(key)] = []string{value}
}

// Keys returns the header names.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// loggingExporter logs export failures with the injected logger and hides
// them from the batch span processor, which would otherwise hand them to
// otel's global error handler (a process-wide logger to stderr).
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

// ExportSpans exports spans and logs a failure instead of returning it.
func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.log.Warn("export spans failed", slog.Int("spans", len(spans)), slog.Any("error", err))
	}
	return nil
}
