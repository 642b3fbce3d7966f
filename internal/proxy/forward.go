package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/balance"
	"github.com/gatehouse-gw/gatehouse/internal/breaker"
	"github.com/gatehouse-gw/gatehouse/internal/retry"
	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// exchange is the state of one request being forwarded: the client side,
// the route, the replicas tried so far and the current attempt. One is taken
// from a pool per request and put back when the handler returns: pickers
// receive it as their balance.Health and the tried replicas as a slice of
// its array, and an interface call would move a stack value to the heap.
type exchange struct {
	p     *Proxy
	w     http.ResponseWriter // &cw
	cw    countingWriter      // the client's writer, counting body bytes
	r     *http.Request
	match snapshot.Match
	path  string // r's escaped path, as routed
	route *snapshot.Route
	svc   *snapshot.Service // nil for a route that responds itself
	group *breaker.Group    // nil without breakers, or without svc
	key   uint64            // consistent-hash key; 0 for other policies
	body  requestBody

	// now is the breaker clock of the current pick, read by Available.
	now    time.Time
	tried  [maxTried]*snapshot.Replica
	ntried int

	// The replica of the current attempt, as set by pick.
	rep *snapshot.Replica
	st  *replicaState
	br  *breaker.Breaker // nil when its breaker is unknown

	attempts int // sent so far
	status   int // sent to the client, or statusClientClosed

	start time.Time      // when the request arrived
	span  telemetry.Span // the request's trace span
	ad    admission      // the admission step's outcome
	query string         // the upstream raw query: the client's, minus an API key
}

func (p *Proxy) getExchange(w http.ResponseWriter, r *http.Request, m snapshot.Match, path string) *exchange {
	x := p.exchanges.Get().(*exchange)
	x.cw.ResponseWriter = w
	x.p, x.w, x.r, x.match, x.path = p, &x.cw, r, m, path
	x.route, x.svc = m.Route, m.Route.Service
	if p.breakers != nil && x.svc != nil {
		x.group = p.breakers.For(x.svc.Name)
	}
	return x
}

// putExchange reports the request's outcome and recycles x. Nothing may
// use x afterwards; the transport's goroutines never see it.
func (p *Proxy) putExchange(x *exchange) {
	f := finished{
		start: x.start, span: x.span, path: x.path,
		route: x.route.Name, service: serviceName(x.route),
		status: x.status, bytes: x.cw.n, attempts: x.attempts,
	}
	if x.rep != nil {
		f.replica = x.rep.ID
	}
	if x.ad.entry != nil {
		f.keyID = x.ad.entry.ID
	}
	if p.observe != nil {
		p.observe(x.r, Outcome{Route: f.route, Service: f.service, Replica: f.replica, Status: f.status, Attempts: f.attempts})
	}
	p.report(x.r, &f)
	*x = exchange{}
	p.exchanges.Put(x)
}

// logAttrs logs msg with the exchange's route and current replica.
func (p *Proxy) logAttrs(ctx context.Context, x *exchange, level slog.Level, msg string, attrs ...slog.Attr) {
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs = append(attrs, slog.String("route", x.route.Name))
	if x.rep != nil {
		attrs = append(attrs, slog.String("replica", x.rep.ID))
	}
	p.log.LogAttrs(ctx, level, msg, attrs...)
}

// attempt is one try of a request on one replica.
type attempt struct {
	rep *snapshot.Replica
	st  *replicaState
	br  *breaker.Breaker
	svc string // the service's name, for metrics

	// ctx is the attempt's context: the request's, or a child of it ended
	// by the per-try timeout, which cancel releases.
	ctx    context.Context
	cancel context.CancelCauseFunc

	resp    *http.Response // nil when err is set
	err     error
	done    time.Time     // when the response headers or the error came
	latency time.Duration // until then
}

// end releases the attempt: its place in the replica's load, with the
// latency to its response headers, and its context.
func (a *attempt) end() {
	a.st.load.End(a.latency)
	if a.cancel != nil {
		a.cancel(nil)
	}
}

// verdict says what to do after an attempt failed.
type verdict int

const (
	// answer: send the failed attempt's answer to the client.
	answer verdict = iota
	// again: another replica was picked; send the next attempt.
	again
	// abandoned: the request's context ended while waiting to retry.
	abandoned
)

// forward sends x's request to replicas of its route's service until one
// attempt's answer is to go to the client, and streams that answer back.
// Each attempt goes to a replica not tried before by this request, chosen
// by the service's policy and admitted by the replica's breaker. A failed
// attempt is retried when the route's policy, the attempts left, the
// request body, the service's retry budget and the time left all allow it;
// otherwise its own answer (the upstream's response, or a 502/504) is the
// client's.
func (p *Proxy) forward(x *exchange) {
	// The server's own writer: MaxBytesReader and read deadlines need it.
	w, r, route, svc := x.cw.ResponseWriter, x.r, x.route, x.svc
	if p.cfg.MaxBodyBytes > 0 && r.ContentLength > p.cfg.MaxBodyBytes {
		p.answer(x, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	// Only HTTP/1 connections can be hijacked for a protocol switch.
	ws := r.ProtoMajor == 1 && isWebSocket(r.Header)
	pol := retryPolicy(&route.Retry)
	maxAttempts := min(pol.MaxAttempts(), maxTried)
	if ws {
		// The handshake is not retried: a 101 commits the connection,
		// and failed handshakes are rare enough not to be worth a replay.
		maxAttempts = 1
	}
	start := time.Now()
	deadline := start.Add(route.Timeout)
	resend := maxAttempts > 1 && (pol.RetryNonIdempotent || retry.Idempotent(r.Method))
	var err error
	if x.body, err = p.prepareBody(w, r, pol, resend, deadline); err != nil {
		p.clientBodyFailed(r.Context(), x, err)
		return
	}
	budget := p.budgets.For(svc.Name, budgetConfig(&svc.RetryBudget))
	budget.Request(p.clock(start))
	if svc.Balancer.Policy == balance.PolicyConsistentHash {
		x.key = p.hashKey(r, &svc.Balancer)
	}
	if p.pick(x, p.clock(start)) == nil {
		p.answer(x, http.StatusServiceUnavailable, errNoReplica)
		return
	}

	// The route timeout bounds all attempts up to the response headers of
	// the answer, so that long streams (SSE, gRPC, downloads) are not cut.
	// The timer is stopped once those headers arrive; it starts a goroutine
	// only if it fires.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timer := time.AfterFunc(time.Until(deadline), func() { cancel(errUpstreamTimeout) })
	defer timer.Stop()

	header := p.requestHeader(r, route, x.ad.from, ws)
	// The upstream joins the request's trace: a traceparent naming the
	// gateway's span (only when tracing is enabled; else the client's, if
	// any, was copied as it came).
	p.tracing.Inject(r.Context(), header)
	x.query = r.URL.RawQuery
	if a := route.Auth; a != nil && a.Query != "" {
		x.query = stripQuery(x.query, a.Query)
	}
	upath := route.UpstreamPath(x.path, x.match)
	for {
		a := p.send(ctx, x, header, upath, ws)
		if a.err == nil && ctx.Err() != nil {
			// The route timeout or the client ended the request as the
			// headers arrived: the body is unusable.
			a.resp.Body.Close()
			a.resp, a.err = nil, context.Cause(ctx)
		}
		if a.err != nil {
			status, kind, done := p.attemptFailed(ctx, x, &a)
			if done {
				return
			}
			switch p.next(ctx, x, pol, budget, kind, 0, deadline, maxAttempts) {
			case again:
				p.logAttrs(ctx, x, slog.LevelDebug, "retrying upstream request", slog.Int("attempt", x.attempts+1),
					slog.String("failed_replica", a.rep.ID), slog.Any("error", a.err))
				continue
			case abandoned:
				p.abandoned(ctx, x)
				return
			}
			p.upstreamError(ctx, x, status, a.err)
			return
		}

		resp := a.resp
		if svc.Breaker.IsFailure(resp.StatusCode) {
			p.failure(&a, a.done, resp.Status)
		} else {
			p.success(&a)
		}
		// Any status may be one the policy retries; next says.
		switch p.next(ctx, x, pol, budget, retry.Status, resp.StatusCode, deadline, maxAttempts) {
		case again:
			p.logAttrs(ctx, x, slog.LevelDebug, "retrying upstream request", slog.Int("attempt", x.attempts+1),
				slog.String("failed_replica", a.rep.ID), slog.Int("upstream_status", resp.StatusCode))
			discard(resp)
			a.end()
			continue
		case abandoned:
			resp.Body.Close()
			a.end()
			p.abandoned(ctx, x)
			return
		}
		if !timer.Stop() {
			// The route timeout fired as this answer was chosen.
			resp.Body.Close()
			a.end()
			p.upstreamError(ctx, x, http.StatusGatewayTimeout, errUpstreamTimeout)
			return
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			p.switchProtocols(x, &a, ws)
			return
		}
		p.respond(x, &a)
		return
	}
}

// send sends one attempt to x's current replica. header, upath and the
// body are shared by all attempts; each attempt gets its own request.
func (p *Proxy) send(ctx context.Context, x *exchange, header http.Header, upath string, ws bool) attempt {
	a := attempt{rep: x.rep, st: x.st, br: x.br, ctx: ctx, svc: x.svc.Name}
	var perTry *time.Timer
	if d := x.route.Retry.PerTryTimeout; d > 0 {
		// Like the route timeout, it bounds the wait for headers only.
		a.ctx, a.cancel = context.WithCancelCause(ctx)
		cancel := a.cancel
		perTry = time.AfterFunc(d, func() { cancel(errPerTryTimeout) })
	}
	r := x.r
	out := r.WithContext(a.ctx) // shallow copy; every field the transport reads is set below
	out.URL = upstreamURL(a.rep.URL, upath, x.query)
	out.Host = ""
	if x.route.PreserveHost {
		out.Host = r.Host
	}
	out.RequestURI = ""
	out.Close = false
	out.Header = header
	out.Body, out.ContentLength = x.body.open(r)

	t := p.h1
	if x.svc.H2C && a.rep.URL.Scheme == "http" && !ws {
		t = p.h2c
	}
	x.attempts++
	a.st.load.Begin()
	start := time.Now()
	a.resp, a.err = t.RoundTrip(out)
	a.done = time.Now()
	a.latency = a.done.Sub(start)
	if p.metrics != nil {
		p.metrics.UpstreamAttempt(a.svc, a.err == nil && !x.svc.Breaker.IsFailure(a.resp.StatusCode))
	}
	if perTry != nil && !perTry.Stop() && a.err == nil {
		// The per-try timer fired as the headers arrived: the attempt's
		// context is cancelled and the body unusable.
		a.resp.Body.Close()
		a.resp, a.err = nil, errPerTryTimeout
	}
	return a
}

// attemptFailed deals with an attempt that got no usable response. Failures
// caused by the client (its body, its leaving) and the route timeout end
// the request at once: done is true and the client has been answered.
// Otherwise the failure is recorded against the replica, and status and
// kind say how to answer it and whether it may be retried.
func (p *Proxy) attemptFailed(ctx context.Context, x *exchange, a *attempt) (status int, kind retry.Failure, done bool) {
	switch {
	case x.body.failure(x.r.Context()) != nil:
		a.end()
		p.clientBodyFailed(ctx, x, x.body.failure(x.r.Context()))
		return 0, 0, true
	case errors.Is(context.Cause(ctx), errUpstreamTimeout):
		p.failure(a, a.done, errUpstreamTimeout.Error())
		a.end()
		p.upstreamError(ctx, x, http.StatusGatewayTimeout, errUpstreamTimeout)
		return 0, 0, true
	case x.r.Context().Err() != nil:
		a.end()
		p.clientGone(ctx, x, a.err)
		return 0, 0, true
	}
	status, kind, reason := http.StatusBadGateway, retry.Classify(a.err), ""
	if errors.Is(a.err, errPerTryTimeout) || errors.Is(context.Cause(a.ctx), errPerTryTimeout) {
		a.err, kind, reason = errPerTryTimeout, retry.Timeout, errPerTryTimeout.Error()
	} else {
		reason = a.err.Error()
	}
	if kind == retry.Timeout {
		status = http.StatusGatewayTimeout
	}
	p.failure(a, a.done, reason)
	a.end()
	return status, kind, false
}

// next decides whether x gets another attempt after one that failed with
// kind (and status, for retry.Status), and if so waits the back-off and
// picks the replica. The checks, cheapest first: the route's policy, the
// attempts left, a body that can be sent again, a replica not tried yet,
// back-off ending before the route timeout, the service's retry budget.
// It returns answer when the failed attempt's answer is the client's
// (including when, after the back-off, no untried replica is admitted),
// again when x's current replica is the next one, and abandoned when ctx
// ended during the back-off.
func (p *Proxy) next(ctx context.Context, x *exchange, pol retry.Policy, budget *retry.Budget, kind retry.Failure, status int, deadline time.Time, maxAttempts int) verdict {
	if !pol.Retryable(x.r.Method, kind, status) || x.attempts >= maxAttempts ||
		!x.body.resendable(kind) || !x.untried() || ctx.Err() != nil {
		return answer
	}
	wait := pol.Backoff(x.attempts-1, rand.Uint64())
	if time.Until(deadline) <= wait {
		return answer
	}
	if !budget.TryRetry(p.clock(time.Now())) {
		p.logAttrs(ctx, x, slog.LevelDebug, "retry budget spent; answering the failed attempt", slog.String("service", x.svc.Name))
		if p.metrics != nil {
			p.metrics.RetryBudgetExhausted(x.svc.Name)
		}
		return answer
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return abandoned
		}
	}
	if p.pick(x, p.clock(time.Now())) == nil {
		return answer
	}
	if p.metrics != nil {
		p.metrics.Retry(x.svc.Name, retryReason(kind))
	}
	return again
}

// success records a successful attempt against its replica.
func (p *Proxy) success(a *attempt) {
	a.st.successes.Add(1)
	if a.br != nil {
		p.transition(a, a.br.Success(p.clock(a.done)))
	}
}

// failure records a failed attempt against its replica, at sys by the
// system clock. reason is short and free of secrets: an error text or a
// status line.
func (p *Proxy) failure(a *attempt, sys time.Time, reason string) {
	a.st.fail(reason, sys)
	if a.br != nil {
		p.transition(a, a.br.Failure(p.clock(sys), reason))
	}
}

// discard drains a bounded amount of a failed response's body, so that its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	if n := resp.ContentLength; n > 0 && n <= maxDiscard {
		_, _ = io.CopyN(io.Discard, resp.Body, n)
	}
	resp.Body.Close()
}

// maxDiscard is the largest failed response body read to keep its
// connection; a longer one (or one of unknown length) is closed unread.
const maxDiscard = 16 << 10

// upstreamURL is the replica's scheme and host with path (escaped, as
// received or rewritten) and the original raw query. Path is never decoded
// and re-encoded: RawPath carries the exact bytes.
func upstreamURL(base *url.URL, path, rawQuery string) *url.URL {
	u := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawPath: path, RawQuery: rawQuery}
	if strings.IndexByte(path, '%') >= 0 {
		if dec, err := url.PathUnescape(path); err == nil {
			u.Path = dec
		}
	}
	return u
}

// requestHeader builds the upstream request's header from r's, without the
// API key: the route's key header always, and Authorization when the key
// came in it (from). Every attempt sends it; nothing changes it once built.
func (p *Proxy) requestHeader(r *http.Request, route *snapshot.Route, from keySource, ws bool) http.Header {
	h := make(http.Header, len(r.Header)+4)
	copyEndToEnd(h, r.Header)
	if a := route.Auth; a != nil {
		if a.Header != "" {
			delete(h, a.Header)
		}
		if from == keyAuthorization {
			delete(h, "Authorization")
		}
	}
	// gRPC requires "TE: trailers" end to end even though TE is hop-by-hop
	// (golang.org/issue/21096).
	if hasToken(r.Header["Te"], "trailers") {
		h["Te"] = []string{"trailers"}
	}
	if ws {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{"websocket"}
	}
	p.setForwarded(h, r)
	if _, ok := h["User-Agent"]; !ok {
		// Present but empty: the transport then sends no User-Agent instead
		// of Go's default.
		h["User-Agent"] = []string{""}
	}
	applyOps(h, &route.RequestHeaders)
	return h
}
