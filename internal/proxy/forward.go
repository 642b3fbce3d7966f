package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// exchange is the engine's view of one request being forwarded: the client
// side, the route and the replica the pipeline chose, and its state. It
// lives on the handler's stack.
type exchange struct {
	w     http.ResponseWriter
	r     *http.Request
	route *snapshot.Route
	rep   *snapshot.Replica
	st    *replicaState
}

// logAttrs logs msg with the exchange's route and replica.
func (p *Proxy) logAttrs(ctx context.Context, x *exchange, level slog.Level, msg string, attrs ...slog.Attr) {
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs = append(attrs, slog.String("route", x.route.Name), slog.String("replica", x.rep.ID))
	p.log.LogAttrs(ctx, level, msg, attrs...)
}

// forward sends r to the replica chosen in d and streams the response back.
// path is r's escaped path, as routed.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, path string, d *decision) {
	route, rep := d.match.Route, d.replica
	x := &exchange{w: w, r: r, route: route, rep: rep, st: p.states.state(rep.ID)}
	x.st.inFlight.Add(1)
	defer x.st.inFlight.Add(-1)

	if p.cfg.MaxBodyBytes > 0 && r.ContentLength > p.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	// Only HTTP/1 connections can be hijacked for a protocol switch.
	ws := r.ProtoMajor == 1 && isWebSocket(r.Header)

	// The route timeout bounds the exchange up to the response headers
	// only, so that long streams (SSE, gRPC, downloads) are not cut. The
	// timer is stopped once headers arrive; it starts a goroutine only if it
	// fires.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timer := time.AfterFunc(route.Timeout, func() { cancel(errUpstreamTimeout) })

	out := r.WithContext(ctx) // shallow copy; every field the transport reads is set below
	out.URL = upstreamURL(rep.URL, route.UpstreamPath(path, d.match), r.URL.RawQuery)
	out.Host = ""
	if route.PreserveHost {
		out.Host = r.Host
	}
	out.RequestURI = ""
	out.Close = false
	out.Header = p.requestHeader(r, route, ws)
	out.Body = nil
	var body *clientBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		rc := r.Body
		if p.cfg.MaxBodyBytes > 0 {
			rc = http.MaxBytesReader(w, rc, p.cfg.MaxBodyBytes)
		}
		body = &clientBody{rc: rc}
		out.Body = body
	}

	t := p.h1
	if route.Service.H2C && rep.URL.Scheme == "http" && !ws {
		t = p.h2c
	}
	resp, err := t.RoundTrip(out)
	if !timer.Stop() && err == nil {
		// The timer fired as the headers arrived: the context is cancelled
		// and the body unusable.
		resp.Body.Close()
		err = errUpstreamTimeout
	}
	if err != nil {
		p.roundTripFailed(ctx, x, body, err)
		return
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		if !ws {
			// The transport never returns a 101 we did not ask for, but an
			// upstream could send one anyway.
			resp.Body.Close()
			p.upstreamFailed(ctx, x, http.StatusBadGateway, errors.New("unexpected 101 switching protocols"))
			return
		}
		p.switchProtocols(x, resp)
		return
	}
	p.respond(x, resp)
}

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

// requestHeader builds the upstream request's header from r's.
func (p *Proxy) requestHeader(r *http.Request, route *snapshot.Route, ws bool) http.Header {
	h := make(http.Header, len(r.Header)+4)
	copyEndToEnd(h, r.Header)
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

// roundTripFailed answers a request whose upstream exchange failed before
// response headers, telling apart the client's fault, the client leaving, a
// timeout and an unreachable upstream. ctx is the upstream request's.
func (p *Proxy) roundTripFailed(ctx context.Context, x *exchange, body *clientBody, err error) {
	if berr := body.failure(x.r.Context()); berr != nil {
		status, msg := http.StatusBadRequest, "incomplete or malformed request body"
		if _, ok := errors.AsType[*http.MaxBytesError](berr); ok {
			status, msg = http.StatusRequestEntityTooLarge, "request body too large"
		}
		p.logAttrs(ctx, x, slog.LevelDebug, "client request body failed",
			slog.Int("status", status), slog.Any("error", berr))
		writeError(x.w, status, msg)
		return
	}
	switch {
	case errors.Is(context.Cause(ctx), errUpstreamTimeout):
		p.upstreamFailed(ctx, x, http.StatusGatewayTimeout, errUpstreamTimeout)
	case x.r.Context().Err() != nil:
		p.clientGone(ctx, x, err)
	default:
		p.upstreamFailed(ctx, x, http.StatusBadGateway, err)
	}
}

// upstreamFailed records a failure of the replica and answers status.
func (p *Proxy) upstreamFailed(ctx context.Context, x *exchange, status int, err error) {
	x.st.fail(err.Error(), time.Now())
	p.logAttrs(ctx, x, slog.LevelWarn, "upstream request failed",
		slog.Int("status", status), slog.Any("error", err))
	msg := "upstream unavailable"
	if status == http.StatusGatewayTimeout {
		msg = "upstream timeout"
	}
	writeError(x.w, status, msg)
}

// clientGone notes a request abandoned by its client. It is not an upstream
// error: the replica is not blamed and nothing is sent.
func (p *Proxy) clientGone(ctx context.Context, x *exchange, err error) {
	p.logAttrs(ctx, x, slog.LevelDebug, "client went away",
		slog.Int("status", statusClientClosed), slog.Any("error", err))
}

// respond copies resp to the client: headers, body (flushed as it arrives
// when streaming) and trailers.
func (p *Proxy) respond(x *exchange, resp *http.Response) {
	defer resp.Body.Close()
	w, ctx := x.w, x.r.Context()
	h := w.Header()
	copyEndToEnd(h, resp.Header)
	applyOps(h, &x.route.ResponseHeaders)
	// The transport removes the Trailer header and declares its keys in
	// resp.Trailer instead; declare them again to the client.
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	// Unknown length (chunked, HTTP/2 streams such as gRPC) and SSE are
	// streams: each read is flushed at once, as httputil does. Known
	// lengths go through the server's buffer.
	var rc *http.ResponseController
	if resp.ContentLength == -1 || isEventStream(resp.Header) {
		rc = http.NewResponseController(w)
		_ = rc.Flush() // the client sees the headers before the first event
	}
	readErr, writeErr := p.copyBody(w, resp.Body, rc)
	switch {
	case writeErr != nil || (readErr != nil && ctx.Err() != nil):
		x.st.successes.Add(1)
		p.clientGone(ctx, x, errors.Join(writeErr, readErr))
		return
	case readErr != nil:
		x.st.fail(readErr.Error(), time.Now())
		p.logAttrs(ctx, x, slog.LevelWarn, "upstream response body failed", slog.Any("error", readErr))
		// The status is sent: aborting is the only way left to tell the
		// client the body is incomplete (golang.org/issue/23643). The
		// server recovers this panic and resets the stream or connection.
		panic(http.ErrAbortHandler)
	}
	if resp.StatusCode >= 500 {
		x.st.fail(resp.Status, time.Now())
	} else {
		x.st.successes.Add(1)
	}

	resp.Body.Close() // fills resp.Trailer
	if len(resp.Trailer) == 0 {
		return
	}
	if rc == nil {
		rc = http.NewResponseController(w)
	}
	// Flushing forces chunked encoding, so that HTTP/1 can carry trailers.
	_ = rc.Flush()
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			h[k] = vv
		}
		return
	}
	// Some trailers were not declared (gRPC never declares grpc-status):
	// send them all with the prefix net/http provides for that.
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// copyBody copies src to w through a pooled buffer, flushing after each
// write when rc is not nil. It tells read errors (upstream) from write
// errors (client).
func (p *Proxy) copyBody(w io.Writer, src io.Reader, rc *http.ResponseController) (readErr, writeErr error) {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if rc != nil {
				if werr := rc.Flush(); werr != nil {
					return nil, werr
				}
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// clientBody wraps the client's request body on its way upstream. It
// remembers how reading it went, so that a failure caused by the client's
// body is answered 400 instead of being blamed on the upstream, which is all
// the transport's error would say. Close does not close the client's body:
// the transport may close early (on a dial error, say) and closing the
// server's body then could block on a 100-continue client.
type clientBody struct {
	rc io.ReadCloser

	mu      sync.Mutex // the transport reads from its own goroutine
	reading bool       // a Read has started and EOF was not reached
	eof     bool
	err     error
}

// Read implements io.Reader.
func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reading = true
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	if err != nil {
		b.mu.Lock()
		if err == io.EOF {
			b.eof, b.reading = true, false
		} else if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// Close implements io.Closer without closing the client's body.
func (b *clientBody) Close() error { return nil }

// failure returns the error reading the client's body if the round trip
// failed because of it, or nil. Besides a recorded read error, a body
// still being read when the client's context ended counts: net/http cancels
// the request context from inside the failing read, before the error
// reaches this wrapper, so the transport may report the cancellation first.
func (b *clientBody) failure(clientCtx context.Context) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if b.reading && !b.eof && clientCtx.Err() != nil {
		return io.ErrUnexpectedEOF
	}
	return nil
}
