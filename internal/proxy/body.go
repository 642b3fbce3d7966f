package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/retry"
)

// requestBody is the client's request body as the attempts send it: read
// ahead and buffered so that every attempt can send it again, or streamed
// by the one attempt that reads it. The zero value is no body.
type requestBody struct {
	replay *retry.Body // buffered and replayable; nil otherwise
	stream *clientBody // streamed once; nil otherwise
}

// prepareBody sets up r's body for the attempts. It is buffered for replay
// only when resend is true (the request may be retried after it was sent)
// and its declared length is within the route's replay limit. Every other
// body is streamed, which the first attempt to read it consumes. Bodies of
// unknown length are never read ahead: a client that waits for the response
// before ending its stream (a gRPC or other bidirectional stream) would
// stall. A client body that fails while being buffered is returned as an
// error wrapping retry.ErrClientBody; reading ahead stops at deadline (the
// route timeout, which bounds a streamed body too), with an error wrapping
// os.ErrDeadlineExceeded.
func (p *Proxy) prepareBody(w http.ResponseWriter, r *http.Request, pol retry.Policy, resend bool, deadline time.Time) (requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return requestBody{}, nil
	}
	rc := r.Body
	if p.cfg.MaxBodyBytes > 0 {
		rc = http.MaxBytesReader(w, rc, p.cfg.MaxBodyBytes)
	}
	if limit := pol.ReplayLimit(); resend && r.ContentLength > 0 && r.ContentLength <= limit {
		ctl := http.NewResponseController(w)
		_ = ctl.SetReadDeadline(deadline) // unsupported by some writers: unbounded then
		b, err := retry.Buffer(rc, r.ContentLength, limit)
		if err != nil {
			// The deadline stays: the server reads what is left of the body
			// before answering, which must not wait for a stalled client.
			return requestBody{}, err
		}
		_ = ctl.SetReadDeadline(time.Time{})
		if b.Replayable() {
			return requestBody{replay: b}, nil
		}
		rc = b.Open()
	}
	return requestBody{stream: &clientBody{rc: rc}}, nil
}

// open returns the body of one attempt and its length (-1 if unknown).
func (b *requestBody) open(r *http.Request) (io.ReadCloser, int64) {
	switch {
	case b.replay != nil:
		return b.replay.Open(), b.replay.ContentLength()
	case b.stream != nil:
		return b.stream, r.ContentLength
	}
	return nil, 0
}

// resendable reports whether another attempt can send the body after an
// attempt that failed with kind: always when it is buffered or empty; a
// streamed body only if the failed attempt never reached the replica and
// read none of it.
func (b *requestBody) resendable(kind retry.Failure) bool {
	return b.stream == nil || (kind == retry.NotSent && !b.stream.touched())
}

// failure returns the error reading the client's streamed body if an
// attempt failed because of it, or nil.
func (b *requestBody) failure(clientCtx context.Context) error {
	return b.stream.failure(clientCtx)
}

// clientBody wraps the client's streamed request body on its way upstream.
// It remembers how reading it went, so that a failure caused by the
// client's body is answered 400 instead of being blamed on the upstream,
// which is all the transport's error would say, and so that an attempt
// that never read it can hand it to the next. Close does not close the
// client's body: the transport may close early (on a dial error, say) and
// closing the server's body then could block on a 100-continue client.
type clientBody struct {
	rc io.ReadCloser

	mu      sync.Mutex // the transport reads from its own goroutine
	started bool       // a Read has been called
	reading bool       // a Read has started and EOF was not reached
	eof     bool
	err     error
}

// Read implements io.Reader.
func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.started, b.reading = true, true
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

// touched reports whether any attempt has started reading the body.
func (b *clientBody) touched() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

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
