package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strconv"
)

// statusClientClosed is the status recorded (never sent) when the client
// went away before the response was complete, as nginx logs it.
const statusClientClosed = 499

// errNoReplica is the answer when no replica of the service may be tried.
const errNoReplica = "no replicas available"

var (
	// errUpstreamTimeout is the cancellation cause when a route's timeout
	// expires before the answer's response headers arrive.
	errUpstreamTimeout = errors.New("upstream timeout")
	// errPerTryTimeout is the cancellation cause when a route's per-try
	// timeout expires before one attempt's response headers arrive.
	errPerTryTimeout = errors.New("per-try timeout")
)

// writeError answers with a small JSON body {"error": msg, "status": status}
// and returns the body's length.
func writeError(w http.ResponseWriter, status int, msg string) int {
	body, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, status})
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return len(body)
}

// answer sends the client an error the proxy decided on itself, with the
// RateLimit-* fields of the limits the request was counted against (with
// Retry-After when one refused it).
func (p *Proxy) answer(x *exchange, status int, msg string) {
	x.status = status
	writeLimitHeaders(x.w.Header(), &x.ad)
	writeError(x.w, status, msg)
}

// upstreamError answers a request whose last attempt failed before a usable
// response: 504 after a timeout, 502 otherwise. The failure has been
// recorded against the replica already.
func (p *Proxy) upstreamError(ctx context.Context, x *exchange, status int, err error) {
	p.logAttrs(ctx, x, slog.LevelWarn, "upstream request failed",
		slog.Int("status", status), slog.Any("error", err), slog.Int("attempts", x.attempts))
	msg := "upstream unavailable"
	if status == http.StatusGatewayTimeout {
		msg = "upstream timeout"
	}
	p.answer(x, status, msg)
}

// clientBodyFailed answers a request whose body the client broke: 413 past
// the size limit, 408 when it was not sent within the route timeout, 400
// otherwise. No replica is blamed.
func (p *Proxy) clientBodyFailed(ctx context.Context, x *exchange, err error) {
	status, msg := http.StatusBadRequest, "incomplete or malformed request body"
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		status, msg = http.StatusRequestEntityTooLarge, "request body too large"
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		status, msg = http.StatusRequestTimeout, "request body not received in time"
	}
	p.logAttrs(ctx, x, slog.LevelDebug, "client request body failed",
		slog.Int("status", status), slog.Any("error", err))
	p.answer(x, status, msg)
}

// clientGone notes a request abandoned by its client. It is not an upstream
// error: the replica is not blamed and nothing is sent.
func (p *Proxy) clientGone(ctx context.Context, x *exchange, err error) {
	x.status = statusClientClosed
	p.logAttrs(ctx, x, slog.LevelDebug, "client went away",
		slog.Int("status", statusClientClosed), slog.Any("error", err))
}

// abandoned answers a request whose context ended while it waited to be
// retried: the route timeout passed (504), or the client left.
func (p *Proxy) abandoned(ctx context.Context, x *exchange) {
	if errors.Is(context.Cause(ctx), errUpstreamTimeout) {
		p.upstreamError(ctx, x, http.StatusGatewayTimeout, errUpstreamTimeout)
		return
	}
	p.clientGone(ctx, x, context.Cause(ctx))
}
