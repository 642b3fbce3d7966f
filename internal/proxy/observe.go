package proxy

import (
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/retry"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// countingWriter is the client's http.ResponseWriter, counting the body
// bytes written through it for the access log. It lives in the pooled
// exchange, so wrapping costs no allocation. Unwrap lets
// http.ResponseController reach the server's writer for Flush, Hijack and
// deadlines.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

// Write writes b to the client and counts what was written.
func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap returns the server's writer, for http.ResponseController.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// admitExchange runs the admission step for x and, if the request is
// refused, answers it; it reports whether the request may be forwarded.
// Refusals are counted (auth failures, rate-limit rejections); the key
// itself is never logged or echoed, only its ID.
func (p *Proxy) admitExchange(x *exchange) bool {
	r := x.r
	x.ad = p.admit.admit(r.Context(), x.route, admitRequest{Header: r.Header, RawQuery: r.URL.RawQuery}, p.clock(x.start))
	ad := &x.ad
	if ad.status == 0 {
		return true
	}
	h := x.w.Header()
	if ad.challenge != "" {
		h["Www-Authenticate"] = []string{ad.challenge}
	}
	if ad.retryAfter != "" {
		h["Retry-After"] = []string{ad.retryAfter}
	}
	if m := p.metrics; m != nil {
		if ad.authFailure != "" {
			m.AuthFailure(x.route.Name, ad.authFailure)
		}
		if ad.limitScope != "" {
			m.RateLimited(x.route.Name, ad.limitScope)
		}
	}
	p.answer(x, ad.status, ad.reason)
	return false
}

// finished is what the proxy reports of one request once it is answered.
type finished struct {
	start                          time.Time
	span                           telemetry.Span
	path                           string // escaped, without the query
	route, service, replica, keyID string
	status                         int
	bytes                          int64
	attempts                       int
}

// report records a finished request: its metrics, its access log line and
// the end of its span. Without a metrics sink, an enabled access log or
// tracing, it costs a clock reading.
func (p *Proxy) report(r *http.Request, f *finished) {
	d := time.Since(f.start)
	if p.metrics != nil {
		p.metrics.ObserveRequest(f.route, f.service, f.status, d)
	}
	if p.access.Enabled() {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		p.access.Log(telemetry.Entry{
			Time: f.start, Method: r.Method, Host: r.Host, Path: f.path,
			Route: f.route, Service: f.service, Replica: f.replica,
			Status: f.status, Bytes: f.bytes, Duration: d, Attempts: f.attempts,
			ClientIP: ip, KeyID: f.keyID, TraceID: f.span.TraceID(), UserAgent: r.UserAgent(),
		})
	}
	f.span.End(f.status, f.route, f.service, nil)
}

// transition reports a change of a replica's breaker state to the metrics.
// Other changes (health checks, an operator's ejection, another instance's)
// reach gatehouse_replica_state through cmd/gatehouse, which reads the
// breakers periodically.
func (p *Proxy) transition(a *attempt, t breaker.Transition) {
	if p.metrics == nil {
		return
	}
	switch t {
	case breaker.Ejected:
		p.metrics.Ejection(a.svc, a.rep.ID)
		p.metrics.ReplicaState(a.svc, a.rep.ID, telemetry.ReplicaEjected)
	case breaker.Restored:
		p.metrics.ReplicaState(a.svc, a.rep.ID, telemetry.ReplicaHealthy)
	}
}

// retryReason is the reason label of a retry after a failure of kind.
func retryReason(kind retry.Failure) string {
	switch kind {
	case retry.NotSent:
		return telemetry.RetryNotSent
	case retry.Timeout:
		return telemetry.RetryTimeout
	case retry.Status:
		return telemetry.RetryStatus
	}
	return "other"
}
