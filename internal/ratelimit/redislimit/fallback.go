package redislimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/ratelimit"
)

// fallbackAllow asks the fallback, under this instance's share of limit,
// and reports limit itself as the Policy (see the package doc).
func (l *Limiter) fallbackAllow(ctx context.Context, key string, limit ratelimit.Limit, now time.Time) (ratelimit.Decision, error) {
	n := 1
	if l.share != nil {
		n = l.share()
	}
	d, err := l.fallback.Allow(ctx, key, scale(limit, n), now)
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("fallback: %w", err)
	}
	d.Policy = limit
	return d, nil
}

// scale returns one instance's share of limit, valid, when n instances
// share it: Requests/n per Per and Burst/n at once, rounded down so that the
// instances together never allow more than limit, but at least 1 each so
// that no instance refuses everything. n below 2 returns limit unchanged.
func scale(limit ratelimit.Limit, n int) ratelimit.Limit {
	if n <= 1 {
		return limit
	}
	burst := limit.Burst
	if burst == 0 {
		burst = limit.Requests
	}
	s := ratelimit.Limit{Requests: max(limit.Requests/n, 1), Per: limit.Per, Burst: max(burst/n, 1)}
	// Rounding Requests down can lengthen the interval by more than it
	// shortens the burst (5 requests over 3 instances: 1 each, at 5 times
	// the interval); keep the allowance within Limit.Validate's bound.
	if t := int64(s.Per) / int64(s.Requests); int64(s.Burst) > math.MaxInt64/t {
		s.Burst = int(math.MaxInt64 / t)
	}
	return s
}
