// Package proxy is Gatehouse's data plane: the per-request pipeline that
// routes a request on the current snapshot, picks a replica by the
// service's balancing policy, gates it through the replica's circuit
// breaker and retries a failed attempt on another replica when that is
// safe; and the net/http engine that forwards each attempt and streams the
// chosen answer back.
package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
	"github.com/gatehouse-gw/gatehouse/internal/retry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// Source hands out the current snapshot; the proxy loads it once per request
// and never mutates it. *atomic.Pointer[snapshot.Snapshot] satisfies it. A
// nil snapshot makes every request fail with 503.
type Source interface {
	Load() *snapshot.Snapshot
}

// Deps are the Proxy's optional collaborators.
type Deps struct {
	// Breakers holds the circuit breakers of every service's replicas. The
	// caller keeps it in step with the snapshots of the Source
	// (Breakers.Sync on each one); a replica the breakers do not know yet
	// is allowed. Nil means no passive health checking: every replica is
	// always available.
	Breakers *breaker.Breakers
	// Budgets limits the retries of each service; nil means a Budgets of
	// the Proxy's own.
	Budgets *retry.Budgets
	// Observe, if set, is called once per request when the proxy is done
	// with it (the response sent, or abandoned by the client), on the
	// request's goroutine. It must be quick and must not keep r.
	Observe func(r *http.Request, o Outcome)

	// Keys checks the API keys of routes that require one (snapshot.Route
	// Auth). Nil refuses those routes with 503: a route that asks for a
	// key is never served without one.
	Keys KeyChecker
	// Limiter enforces route and key rate limits, under the keys
	// "route:<name>" and "key:<id>"; nil enforces none.
	Limiter ratelimit.Limiter
	// Quotas counts key quotas, under "key:<id>:day" or "key:<id>:month";
	// nil enforces none.
	Quotas QuotaCounter
	// Metrics receives per-request, per-attempt, retry, breaker, auth and
	// rate-limit metrics; nil records none.
	Metrics *telemetry.Metrics
	// AccessLog gets one entry per request; nil or disabled logs none.
	AccessLog *telemetry.AccessLog
	// Tracing starts a server span per request and propagates its context
	// upstream; nil (or disabled) forwards the client's traceparent as it
	// came.
	Tracing *telemetry.Tracing
	// Artifacts serves the bodies of routes that respond themselves
	// (snapshot.Route Respond). Nil: such routes answer 503.
	Artifacts ArtifactSource
}

// Outcome is what became of one request, for access logs and metrics.
type Outcome struct {
	// Route and Service are the names of the matched route and its service;
	// empty when no route matched. Service is empty too for a route that
	// responds itself.
	Route, Service string
	// Replica is the ID of the replica of the last attempt; empty when none
	// was tried.
	Replica string
	// Status is the status sent to the client, or 499 when the client went
	// away first.
	Status int
	// Attempts is the number of attempts sent upstream, retries included.
	Attempts int
}

// bufSize is the size of the buffers responses are copied through; 32 KiB
// is what io.Copy and httputil.ReverseProxy use.
const bufSize = 32 << 10

var _ http.Handler = (*Proxy)(nil)

// Proxy forwards requests to the replicas chosen by routing each request on
// the snapshot from its Source. It is an http.Handler, safe for concurrent
// use. Per-replica runtime state (load, outcome counters) and balancing
// positions live in the Proxy, keyed by replica ID and service name, so they
// survive snapshot swaps.
type Proxy struct {
	src       Source
	cfg       Config
	log       *slog.Logger
	breakers  *breaker.Breakers // nil: no breakers
	budgets   *retry.Budgets
	observe   func(*http.Request, Outcome)
	admit     admitter
	metrics   *telemetry.Metrics   // nil: none
	access    *telemetry.AccessLog // nil or disabled: none
	tracing   *telemetry.Tracing   // nil or disabled: propagation only
	artifacts ArtifactSource       // nil: routes that respond answer 503
	pickers   pickers
	states    replicaStates

	// h1 speaks HTTP/1.1 to plain-http replicas and negotiates HTTP/2 by
	// ALPN with https ones; h2c speaks HTTP/2 with prior knowledge to
	// plain-http replicas of services marked H2C.
	h1  *http.Transport
	h2c *http.Transport

	bufs      sync.Pool // *[]byte of bufSize
	exchanges sync.Pool // *exchange
}

// New returns a Proxy serving the snapshots of src with the collaborators
// in deps. cfg is validated and its zero fields defaulted; a nil log
// discards logs.
func New(src Source, deps Deps, cfg Config, log *slog.Logger) (*Proxy, error) {
	if src == nil {
		return nil, fmt.Errorf("new proxy: nil snapshot source")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new proxy: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	budgets := deps.Budgets
	if budgets == nil {
		budgets = new(retry.Budgets)
	}
	p := &Proxy{
		src:       src,
		cfg:       cfg,
		log:       log,
		breakers:  deps.Breakers,
		budgets:   budgets,
		observe:   deps.Observe,
		admit:     admitter{keys: deps.Keys, limiter: deps.Limiter, quotas: deps.Quotas, log: log},
		metrics:   deps.Metrics,
		access:    deps.AccessLog,
		tracing:   deps.Tracing,
		artifacts: deps.Artifacts,
		pickers:   newPickers(),
		h1:        newTransport(cfg, false),
		h2c:       newTransport(cfg, true),
	}
	p.bufs.New = func() any {
		b := make([]byte, bufSize)
		return &b
	}
	p.exchanges.New = func() any { return new(exchange) }
	return p, nil
}

func newTransport(cfg Config, h2c bool) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// Never an HTTP proxy from the environment: replicas are dialled
		// directly.
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       cfg.UpstreamTLS.Clone(),
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		// The body is passed through as the upstream encoded it; the
		// transport must neither ask for gzip nor decode it.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// Close closes idle upstream connections. Requests in flight are not
// affected and the Proxy stays usable.
func (p *Proxy) Close() {
	p.h1.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
}

// ReplicaStats returns the runtime state of the replica with the given ID,
// and false if the proxy has no state for it (never used, or gone from the
// snapshot).
func (p *Proxy) ReplicaStats(id string) (ReplicaStats, bool) {
	s, ok := p.states.lookup(id)
	if !ok {
		return ReplicaStats{}, false
	}
	return s.stats(), true
}

// ServeHTTP routes r on the current snapshot, loaded once, admits it (API
// key, rate limits, quota; see admitter) and forwards it to replicas of the
// route's service, retrying as the route's policy allows; a route that
// responds itself is answered with its artifact instead (see
// Proxy.serveArtifact). Errors it answers itself are small JSON bodies
// {"error": "...", "status": N}: 404 without a route, 401 or 403 for a
// missing, bad or unauthorized API key, 429 over a rate limit or quota, 503
// without an available replica (or API keys, or artifacts), 502 when the
// replica cannot be reached or the artifact does not exist, 504 when the
// route's timeout passes before response headers, 400 or 413 for a bad
// request body. Routing and picking do not allocate; see
// BenchmarkServeHTTP for the rest.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if p.metrics != nil {
		p.metrics.InFlight(1)
		defer p.metrics.InFlight(-1)
	}
	ctx, span := p.tracing.Start(r.Context(), r)
	if p.tracing.Enabled() {
		r = r.WithContext(ctx)
	}
	snap := p.src.Load()
	if snap != nil && p.states.advance(snap) {
		// Once per revision, on the first request that sees it: O(replicas).
		p.forget(snap)
	}
	path := r.URL.EscapedPath()
	d := decide(snap, snapshot.Request{Host: r.Host, Method: r.Method, Path: path, Header: r.Header})
	if d.status != 0 {
		f := finished{start: start, span: span, path: path, status: d.status}
		f.bytes = int64(writeError(w, d.status, d.reason))
		if rt := d.match.Route; rt != nil {
			f.route, f.service = rt.Name, serviceName(rt)
		}
		if p.observe != nil {
			p.observe(r, Outcome{Route: f.route, Service: f.service, Status: d.status})
		}
		p.report(r, &f)
		return
	}
	x := p.getExchange(w, r, d.match, path)
	x.start, x.span = start, span
	defer p.putExchange(x)
	if !p.admitExchange(x) {
		return
	}
	if x.route.Respond != nil {
		p.serveArtifact(x)
		return
	}
	p.forward(x)
}

// serviceName is the name of rt's service, "" for a route that responds
// itself: the metrics' service label stays bounded by the configuration.
func serviceName(rt *snapshot.Route) string {
	if rt.Service == nil {
		return ""
	}
	return rt.Service.Name
}

// forget drops the state of replicas and services that are not in keep.
func (p *Proxy) forget(keep *snapshot.Snapshot) {
	p.states.prune(keep)
	p.pickers.prune(keep)
	p.budgets.Retain(func(service string) bool {
		_, ok := keep.Services[service]
		return ok
	})
}

// clock returns the time of breaker and budget decisions: Config.Now's, or
// sys, a reading of the system clock the caller took anyway (each reading
// costs tens of nanoseconds, more on some virtual machines).
func (p *Proxy) clock(sys time.Time) time.Time {
	if p.cfg.Now != nil {
		return p.cfg.Now()
	}
	return sys
}
