package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// respond copies the answer of attempt a to the client: headers, body
// (flushed as it arrives when streaming) and trailers. The attempt's
// outcome by status has been recorded; a body the upstream breaks off is
// recorded as a failure too.
func (p *Proxy) respond(x *exchange, a *attempt) {
	resp := a.resp
	defer a.end()
	defer resp.Body.Close()
	w, ctx := x.w, x.r.Context()
	x.status = resp.StatusCode
	h := w.Header()
	copyEndToEnd(h, resp.Header)
	applyOps(h, &x.route.ResponseHeaders)
	writeLimitHeaders(h, &x.ad)
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
		p.clientGone(ctx, x, errors.Join(writeErr, readErr))
		return
	case readErr != nil:
		if !x.svc.Breaker.IsFailure(resp.StatusCode) {
			p.failure(a, time.Now(), readErr.Error())
		}
		p.logAttrs(ctx, x, slog.LevelWarn, "upstream response body failed", slog.Any("error", readErr))
		// The status is sent: aborting is the only way left to tell the
		// client the body is incomplete (golang.org/issue/23643). The
		// server recovers this panic and resets the stream or connection.
		panic(http.ErrAbortHandler)
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
