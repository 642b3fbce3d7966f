package retry

import (
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"time"
)

// Defaults applied to zero fields of Policy.
const (
	// DefaultAttempts is the number of attempts, counting the first.
	DefaultAttempts = 3
	// DefaultBackoffBase is the first back-off ceiling.
	DefaultBackoffBase = 25 * time.Millisecond
	// DefaultBackoffMax caps every back-off.
	DefaultBackoffMax = 250 * time.Millisecond
	// DefaultMaxReplayBody is the largest request body kept for a retry.
	DefaultMaxReplayBody = 64 << 10
	// maxAttempts bounds Attempts: more tries than this only multiply an
	// outage.
	maxAttempts = 10
)

// defaultStatuses are the statuses retried when Policy.Statuses is empty:
// the ones a gateway or overloaded server uses to say "not processed, try
// elsewhere" (RFC 9110 §15.6.3–15.6.5).
var defaultStatuses = [...]int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// Policy says when and how often a failed attempt is tried again on the next
// replica. It is a runtime value: compile it from configuration once and
// share it read-only; its methods are safe for concurrent use, do not
// allocate and treat each zero field as its default, so the zero Policy is
// useful (3 attempts, no per-try timeout, 502/503/504 retried for idempotent
// methods, 25ms–250ms back-off, bodies up to 64 KiB replayed).
type Policy struct {
	// Attempts is the total number of attempts, counting the first; 1
	// disables retries. Zero means DefaultAttempts; at most 10.
	Attempts int
	// PerTryTimeout bounds each attempt until its response headers arrive.
	// Zero means no per-try timeout (the route timeout still applies).
	PerTryTimeout time.Duration
	// Statuses are the response statuses that are retried. Empty means 502,
	// 503 and 504.
	Statuses []int
	// RetryNonIdempotent allows retrying POST, PATCH and other
	// non-idempotent methods after the request may have been sent. Requests
	// that were never sent are retried regardless.
	RetryNonIdempotent bool
	// BackoffBase is the back-off ceiling before the first retry; it doubles
	// with each retry. Zero means DefaultBackoffBase.
	BackoffBase time.Duration
	// BackoffMax caps the back-off ceiling. Zero means DefaultBackoffMax.
	BackoffMax time.Duration
	// MaxReplayBody is the largest request body, in bytes, that is buffered
	// so that it can be sent again; requests with a larger body are sent
	// once. Zero means DefaultMaxReplayBody; negative means requests with a
	// body are never retried.
	MaxReplayBody int64
}

// Validate reports every invalid field of p, naming the field and value.
func (p Policy) Validate() error {
	var errs []error
	if p.Attempts < 0 || p.Attempts > maxAttempts {
		errs = append(errs, fmt.Errorf("attempts %d: must be between 1 and %d (0 means %d)", p.Attempts, maxAttempts, DefaultAttempts))
	}
	if p.PerTryTimeout < 0 {
		errs = append(errs, fmt.Errorf("per_try_timeout %s: must not be negative", p.PerTryTimeout))
	}
	for _, s := range p.Statuses {
		if s < 100 || s > 599 {
			errs = append(errs, fmt.Errorf("statuses: %d is not an HTTP status (100-599)", s))
		}
	}
	if p.BackoffBase < 0 {
		errs = append(errs, fmt.Errorf("backoff_base %s: must not be negative", p.BackoffBase))
	}
	if p.BackoffMax < 0 {
		errs = append(errs, fmt.Errorf("backoff_max %s: must not be negative", p.BackoffMax))
	}
	if p.BackoffBase >= 0 && p.BackoffMax >= 0 && p.backoffBase() > p.backoffMax() {
		errs = append(errs, fmt.Errorf("backoff_base %s is greater than backoff_max %s", p.backoffBase(), p.backoffMax()))
	}
	return errors.Join(errs...)
}

// MaxAttempts is the total number of attempts allowed, counting the first:
// Attempts, or DefaultAttempts when it is zero.
func (p Policy) MaxAttempts() int {
	if p.Attempts <= 0 {
		return DefaultAttempts
	}
	return p.Attempts
}

// ReplayLimit is the max argument to pass to Buffer: MaxReplayBody, its
// default when zero, or 0 when negative (only empty bodies are replayable).
func (p Policy) ReplayLimit() int64 {
	switch {
	case p.MaxReplayBody == 0:
		return DefaultMaxReplayBody
	case p.MaxReplayBody < 0:
		return 0
	}
	return p.MaxReplayBody
}

// Retryable reports whether an attempt of a request with this method that
// failed with f (and, for Status, answered status) may be tried again. A
// NotSent failure always may; the others only for idempotent methods (RFC
// 9110 §9.2.2) or when RetryNonIdempotent is set, and Status only when status
// is one of Statuses. It does not look at attempts, budget or body: the
// caller checks those.
func (p Policy) Retryable(method string, f Failure, status int) bool {
	switch f {
	case NotSent:
		return true
	case Status:
		if !p.retriesStatus(status) {
			return false
		}
	case Timeout, Other:
	default:
		return false
	}
	return p.RetryNonIdempotent || Idempotent(method)
}

func (p Policy) retriesStatus(status int) bool {
	statuses := p.Statuses
	if len(statuses) == 0 {
		statuses = defaultStatuses[:]
	}
	for _, s := range statuses {
		if s == status {
			return true
		}
	}
	return false
}

// Idempotent reports whether method is idempotent per RFC 9110 §9.2.2: GET,
// HEAD, OPTIONS, TRACE, PUT and DELETE. Method names are case-sensitive
// (RFC 9110 §9.1).
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// Backoff is the delay before retry number attempt (0 before the first
// retry), with "full jitter": uniform in [0, min(BackoffMax,
// BackoffBase·2^attempt)]. rnd is a uniformly random value supplied by the
// caller (math/rand/v2.Uint64 on the request path), which keeps Backoff pure:
// rnd 0 gives 0 and rnd math.MaxUint64 gives the ceiling.
func (p Policy) Backoff(attempt int, rnd uint64) time.Duration {
	attempt = max(attempt, 0)
	ceiling := p.backoffMax()
	if base := p.backoffBase(); attempt < 63 && base <= ceiling>>attempt {
		ceiling = base << attempt
	}
	if ceiling <= 0 {
		return 0
	}
	// The high word of rnd·(ceiling+1) is uniform in [0, ceiling] without
	// the bias of rnd % (ceiling+1).
	hi, _ := bits.Mul64(rnd, uint64(ceiling)+1)
	return time.Duration(hi)
}

func (p Policy) backoffBase() time.Duration {
	if p.BackoffBase == 0 {
		return DefaultBackoffBase
	}
	return p.BackoffBase
}

func (p Policy) backoffMax() time.Duration {
	if p.BackoffMax == 0 {
		return DefaultBackoffMax
	}
	return p.BackoffMax
}
