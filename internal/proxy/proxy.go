// Package proxy is Gatehouse's data plane: the per-request pipeline that
// routes a request on the current snapshot and picks a replica, and the
// net/http engine that forwards it and streams the answer back.
package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// Source hands out the current snapshot; the proxy loads it once per request
// and never mutates it. *atomic.Pointer[snapshot.Snapshot] satisfies it. A
// nil snapshot makes every request fail with 503.
type Source interface {
	Load() *snapshot.Snapshot
}

// bufSize is the size of the buffers responses are copied through; 32 KiB
// is what io.Copy and httputil.ReverseProxy use.
const bufSize = 32 << 10

var _ http.Handler = (*Proxy)(nil)

// Proxy forwards requests to the replicas chosen by routing each request on
// the snapshot from its Source. It is an http.Handler, safe for concurrent
// use. Per-replica runtime state (in-flight count, outcome counters) and
// round-robin positions live in the Proxy, keyed by replica ID and service
// name, so they survive snapshot swaps.
type Proxy struct {
	src    Source
	cfg    Config
	log    *slog.Logger
	picker Picker
	states replicaStates

	// h1 speaks HTTP/1.1 to plain-http replicas and negotiates HTTP/2 by
	// ALPN with https ones; h2c speaks HTTP/2 with prior knowledge to
	// plain-http replicas of services marked H2C.
	h1  *http.Transport
	h2c *http.Transport

	bufs sync.Pool // *[]byte of bufSize
}

// New returns a Proxy serving the snapshots of src. cfg is validated and its
// zero fields defaulted; a nil log discards logs.
func New(src Source, cfg Config, log *slog.Logger) (*Proxy, error) {
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
	p := &Proxy{
		src:    src,
		cfg:    cfg,
		log:    log,
		picker: NewRoundRobin(),
		h1:     newTransport(cfg, false),
		h2c:    newTransport(cfg, true),
	}
	p.bufs.New = func() any {
		b := make([]byte, bufSize)
		return &b
	}
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

// pruner is the optional capability of a Picker to forget state about
// services that left the configuration.
type pruner interface {
	Prune(keep *snapshot.Snapshot)
}

// ServeHTTP routes r on the current snapshot, loaded once, and forwards it
// to the picked replica. Errors it answers itself are small JSON bodies
// {"error": "...", "status": N}: 404 without a route, 503 without a replica,
// 502 when the replica cannot be reached, 504 when the route's timeout
// passes before the response headers, 400 or 413 for a bad request body.
// Routing and picking do not allocate; see BenchmarkServeHTTP for the rest.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := p.src.Load()
	if snap != nil && p.states.advance(snap) {
		// Once per revision, on the first request that sees it: O(replicas).
		p.states.prune(snap)
		if pr, ok := p.picker.(pruner); ok {
			pr.Prune(snap)
		}
	}
	path := r.URL.EscapedPath()
	d := decide(snap, snapshot.Request{Host: r.Host, Method: r.Method, Path: path, Header: r.Header}, p.picker)
	if d.status != 0 {
		writeError(w, d.status, d.reason)
		return
	}
	p.forward(w, r, path, &d)
}
