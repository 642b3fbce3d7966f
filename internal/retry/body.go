package retry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync/atomic"
)

// ErrClientBody marks errors reading the client's request body, whether
// Buffer read it or an attempt did: the client is at fault, so the proxy
// answers 400 and does not retry. Match it with errors.Is; the original error
// stays in the chain.
var ErrClientBody = errors.New("read client request body")

// ErrNotReplayable is the read error of a second Open of a Body that is not
// Replayable.
var ErrNotReplayable = errors.New("request body is not replayable")

// Body is a request body read ahead so that every attempt can send it. It
// is replayable when the whole body fit in the limit given to Buffer;
// otherwise it can be opened once, for the single attempt allowed.
//
// Memory: a replayable Body holds at most max bytes (the limit passed to
// Buffer, Policy.ReplayLimit) for the life of the request; a body that does
// not fit holds at most max+1 bytes while the attempt sends them. One small
// reader is allocated per Open. A Body is safe for concurrent use.
type Body struct {
	data       []byte
	rest       io.ReadCloser // nil when replayable
	length     int64
	replayable bool
	opened     atomic.Bool
}

// Buffer prepares body, whose length is contentLength (-1 if unknown), for
// retries. It reads up to max+1 bytes: if the whole body fits in max bytes
// the Body is replayable and body is left read to EOF, not closed. If it is
// larger, or contentLength already says it is, the Body is not replayable and
// its one reader yields the bytes already read followed by the rest of body,
// so the single attempt still sends all of it. A nil body or http.NoBody is
// replayable and empty.
//
// Errors reading body are returned wrapped with ErrClientBody.
func Buffer(body io.ReadCloser, contentLength, max int64) (*Body, error) {
	if body == nil || body == http.NoBody {
		return &Body{replayable: true}, nil
	}
	if contentLength > max || max < 0 {
		return &Body{rest: body, length: contentLength}, nil
	}
	// One spare byte reads EOF (or proves the body too long) without growing.
	limit := max
	if limit < math.MaxInt64 {
		limit++
	}
	size := int64(512)
	if contentLength >= 0 {
		size = contentLength + 1
	}
	buf := make([]byte, 0, min(size, limit))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return &Body{data: buf, rest: body, length: contentLength}, nil
			}
			buf = append(buf, 0)[:len(buf)]
			buf = buf[:len(buf):min(int64(cap(buf)), limit)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrClientBody, err)
		}
	}
	if int64(len(buf)) > max {
		// The last read ended the body in the spare byte.
		return &Body{data: buf, rest: body, length: contentLength}, nil
	}
	return &Body{data: buf, length: int64(len(buf)), replayable: true}, nil
}

// Replayable reports whether the body can be sent by more than one attempt.
func (b *Body) Replayable() bool { return b.replayable }

// ContentLength is the length to send upstream: the buffered length when
// Replayable, else the contentLength given to Buffer (-1 if unknown).
func (b *Body) ContentLength() int64 { return b.length }

// Open returns a reader of the whole body for one attempt. A replayable Body
// returns a fresh, independent reader on each call (http.NoBody if empty);
// otherwise the first call returns the only reader and later calls a reader
// failing with ErrNotReplayable. Closing a non-replayable reader closes the
// client's body.
func (b *Body) Open() io.ReadCloser {
	if b.replayable {
		if len(b.data) == 0 {
			return http.NoBody
		}
		r := &replayReader{}
		r.Reset(b.data)
		return r
	}
	if b.opened.Swap(true) {
		return errReader{}
	}
	return &onceReader{data: b.data, rest: b.rest}
}

// replayReader reads one attempt's copy of a buffered body. Embedding
// bytes.Reader keeps its WriteTo, which the transport's io.Copy uses.
type replayReader struct {
	bytes.Reader
}

// Close does nothing: the buffer belongs to the Body.
func (*replayReader) Close() error { return nil }

// onceReader yields the bytes Buffer read, then the rest of the client body.
type onceReader struct {
	data []byte
	rest io.ReadCloser
}

func (r *onceReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	n, err := r.rest.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", ErrClientBody, err)
	}
	return n, err
}

func (r *onceReader) Close() error { return r.rest.Close() }

// errReader is what a second Open of a non-replayable Body returns.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, ErrNotReplayable }
func (errReader) Close() error             { return nil }
