package proxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// switchProtocols completes a WebSocket upgrade the upstream accepted with
// 101 in attempt a: it hijacks the client connection, relays the 101 and
// splices the two connections until either side ends, then closes both.
// The replica's load counts the connection until then. This is the one
// place the proxy starts a goroutine per request: one direction is copied
// by it, the other by the handler's goroutine. ws says whether the client
// asked for the upgrade.
func (p *Proxy) switchProtocols(x *exchange, a *attempt, ws bool) {
	defer a.end()
	resp := a.resp
	w, ctx := x.w, x.r.Context()
	if !ws {
		// The transport never returns a 101 we did not ask for, but an
		// upstream could send one anyway.
		resp.Body.Close()
		err := errors.New("unexpected 101 switching protocols")
		p.failure(a, time.Now(), err.Error())
		p.upstreamError(ctx, x, http.StatusBadGateway, err)
		return
	}
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || !hasToken(resp.Header["Upgrade"], "websocket") {
		resp.Body.Close()
		err := errors.New("upstream switched to a protocol other than websocket")
		p.failure(a, time.Now(), err.Error())
		p.upstreamError(ctx, x, http.StatusBadGateway, err)
		return
	}
	defer backend.Close()

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not the replica's fault: the client connection cannot be taken
		// over (a ResponseWriter without Hijack, or a dead connection).
		p.logAttrs(ctx, x, slog.LevelError, "switch protocols failed",
			slog.Any("error", fmt.Errorf("hijack client connection: %w", err)))
		p.answer(x, http.StatusBadGateway, "cannot switch protocols")
		return
	}
	defer conn.Close()
	x.status = http.StatusSwitchingProtocols

	h := w.Header()
	copyEndToEnd(h, resp.Header)
	applyOps(h, &x.route.ResponseHeaders)
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{"websocket"}

	resp.Header = h
	resp.Body = nil // Write sends the status line and headers only
	if err := resp.Write(brw); err != nil {
		p.clientGone(ctx, x, err)
		return
	}
	if err := brw.Flush(); err != nil {
		p.clientGone(ctx, x, err)
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		// brw.Reader, not conn: it may hold bytes the client sent right
		// after its upgrade request.
		_, _ = io.Copy(backend, brw.Reader)
		closeBoth(conn, backend)
	}()
	_, _ = io.Copy(conn, backend)
	closeBoth(conn, backend)
	<-done
	p.logAttrs(ctx, x, slog.LevelDebug, "websocket closed")
}

// closeBoth ends a splice: closing both connections makes the copy in the
// other direction return.
func closeBoth(a, b io.Closer) {
	_ = a.Close()
	_ = b.Close()
}
