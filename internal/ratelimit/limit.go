// Package ratelimit holds the gateway's request rate limits and quotas.
//
// A rate limit (Limit) bounds how fast a key may send requests: Requests per
// Per, with up to Burst at once. The proxy asks a Limiter for a Decision per
// request. Local is the exact in-memory Limiter of one instance; a
// cluster-wide limiter (for example a Lua script in Redis) implements the
// same interface, and Local serves as its fallback with a share of the limit.
//
// A quota (Quota) bounds how many requests a key may send in a calendar day
// or month (UTC). Quotas counts them in memory, exactly, and persists the
// counts in the store so that they survive a restart.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Limit is a rate limit: Requests per Per, of which up to Burst may be used
// at once. It is enforced with GCRA (the generic cell rate algorithm, as in
// ATM networks, ITU-T I.371): one request is allowed every Per/Requests on
// average, and a key that has been idle can send Burst requests back to
// back. Its zero value is invalid; see Validate.
type Limit struct {
	// Requests is how many requests are allowed per Per. It must be positive.
	Requests int
	// Per is the window Requests applies to, for example time.Minute. It must
	// be at least Requests nanoseconds (one request per nanosecond at most).
	Per time.Duration
	// Burst is how many requests may be sent at once by a key that has been
	// idle. Zero means Requests: the whole allowance may be used at once.
	// It may exceed Requests (a short spike above the average rate).
	Burst int
}

// Validate reports every invalid field of l, naming the field and the value.
func (l Limit) Validate() error {
	var errs []error
	if l.Requests <= 0 {
		errs = append(errs, fmt.Errorf("rate limit: requests %d must be positive, e.g. 100 for 100 requests per minute", l.Requests))
	}
	if l.Per <= 0 {
		errs = append(errs, fmt.Errorf("rate limit: per %v must be positive, e.g. 1m", l.Per))
	}
	if l.Burst < 0 {
		errs = append(errs, fmt.Errorf("rate limit: burst %d is negative; use 0 for the default (= requests)", l.Burst))
	}
	if len(errs) == 0 {
		// Only meaningful once the fields above are valid.
		if int64(l.Per) < int64(l.Requests) {
			errs = append(errs, fmt.Errorf("rate limit: %d requests per %v is more than one per nanosecond; use a longer per", l.Requests, l.Per))
		} else if int64(l.burst()) > math.MaxInt64/l.interval() {
			errs = append(errs, fmt.Errorf("rate limit: burst %d over %v per request overflows; use a smaller burst", l.burst(), time.Duration(l.interval())))
		}
	}
	return errors.Join(errs...)
}

// valid is Validate without building errors, for the hot path.
func (l Limit) valid() bool {
	return l.Requests > 0 && l.Per > 0 && l.Burst >= 0 &&
		int64(l.Per) >= int64(l.Requests) &&
		int64(l.burst()) <= math.MaxInt64/l.interval()
}

// burst is the effective burst: Burst, or Requests when Burst is zero.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Requests
	}
	return l.Burst
}

// interval is the GCRA emission interval in nanoseconds: the time one
// request "costs". Truncation makes the rate at most a nanosecond per request
// faster than asked, never slower.
func (l Limit) interval() int64 {
	return int64(l.Per) / int64(l.Requests)
}

// Decision is the outcome of one Limiter.Allow call. The zero value denies
// with no information.
type Decision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Limit is the most requests the key may send at once from a full
	// allowance: the effective burst of the Limit. Remaining never exceeds
	// it, and Reset is when Remaining is back to it.
	Limit int
	// Remaining is how many more requests the key may send right now.
	Remaining int
	// Reset is, when allowed, the time until the allowance is full again;
	// when denied, the time until the next request would be allowed.
	Reset time.Duration
	// RetryAfter is, when denied, the time until the next request would be
	// allowed; 0 when allowed.
	RetryAfter time.Duration
	// Policy is the Limit the decision was made under. Headers writes it as
	// RateLimit-Policy; a zero Policy omits that header.
	Policy Limit
}

// Limiter decides whether a request under a rate limit may proceed. It is
// defined here, where Local implements it, for the proxy to use and for
// cluster-wide limiters (Redis) to implement.
//
// Allow counts one request for key under limit at now. A key names one
// limited subject and one policy: callers prefix it ("key:<id>",
// "route:<name>") so that different limits never share a key. A denied
// request is not counted. Implementations are safe for concurrent use.
//
// A non-nil error means the limiter could not decide (its backend failed, or
// limit is invalid) and the Decision is meaningless. The caller then falls
// back: typically to a Local limiter enforcing this instance's share of the
// limit (Requests divided by the number of instances), or to allowing the
// request if no fallback is configured. It must not turn a backend outage
// into rejected requests.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit, now time.Time) (Decision, error)
}
