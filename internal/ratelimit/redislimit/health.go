package redislimit

import (
	"sync/atomic"
	"time"
)

// health is the Limiter's view of Redis: healthy, or degraded since a
// failure. It is lock-free (a failure time and a probe flag) and allocates
// nothing, so the request path can consult it on every call.
type health struct {
	backoff time.Duration
	clock   func() time.Time // time.Now, or a test's clock
	epoch   time.Time        // failure times are offsets from it
	// failedAt is 1 + the offset from epoch, in nanoseconds, of the last
	// failure, or 0 while Redis is healthy.
	failedAt atomic.Int64
	// probing is held by the one request trying Redis after a Backoff.
	probing atomic.Bool
}

func newHealth(backoff time.Duration, clock func() time.Time) *health {
	return &health{backoff: backoff, clock: clock, epoch: clock()}
}

// offset returns the time since epoch, plus one so that it is never the 0
// that failedAt uses for healthy. time.Now carries a monotonic reading, so
// steps of the wall clock neither shorten nor stretch a backoff.
func (h *health) offset() int64 {
	return int64(h.clock().Sub(h.epoch)) + 1
}

// admit reports whether a request may call Redis (ok) and, if so, whether
// it is the probe of a degraded Redis. A probe must end with succeeded,
// failed or abandon, which release it.
func (h *health) admit() (probe, ok bool) {
	f := h.failedAt.Load()
	if f == 0 {
		return false, true
	}
	if h.offset()-f < int64(h.backoff) {
		return false, false
	}
	if !h.probing.CompareAndSwap(false, true) {
		return false, false // another request is probing
	}
	return true, true
}

// succeeded records a Redis call that worked, ending any outage. It reports
// whether this call ended one, and how long before it the outage's last
// failure was.
func (h *health) succeeded(probe bool) (sinceFailure time.Duration, recovered bool) {
	f := h.failedAt.Swap(0)
	if probe {
		h.probing.Store(false)
	}
	if f == 0 {
		return 0, false
	}
	return time.Duration(h.offset() - f), true
}

// failed records a Redis failure, starting or prolonging a backoff. It
// reports whether it started an outage, which is worth a log line.
func (h *health) failed(probe bool) (started bool) {
	f := h.failedAt.Swap(h.offset())
	if probe {
		h.probing.Store(false)
	}
	return f == 0
}

// abandon releases a probe that ended without a verdict on Redis.
func (h *health) abandon() {
	h.probing.Store(false)
}

// degraded reports whether requests are decided by the fallback.
func (h *health) degraded() bool {
	return h.failedAt.Load() != 0
}
